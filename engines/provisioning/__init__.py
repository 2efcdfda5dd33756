"""Self-provisioning and cost optimisation: the ``provisioner`` engine (docs/provisioning.md)."""

from engines.provisioning.config import ProvisionerConfig
from engines.provisioning.engine import Provisioner

__all__ = ["Provisioner", "ProvisionerConfig"]
