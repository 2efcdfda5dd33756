"""Smart alerting: auto-remediation → suppression → correlation → severity → capped notification (docs/alerting.md)."""

from engines.alerting.config import MaintenanceWindow, SmartAlertingConfig
from engines.alerting.engine import SmartAlerting

__all__ = ["MaintenanceWindow", "SmartAlerting", "SmartAlertingConfig"]
