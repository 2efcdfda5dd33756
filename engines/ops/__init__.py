"""The autonomous operations center: detection, incidents, RCA, runbooks, alerting."""
