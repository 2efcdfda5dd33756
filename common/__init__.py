"""Small helpers every layer may import (the twin, the control plane, adapters, engines, the CLI): no dependencies."""
