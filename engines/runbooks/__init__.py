"""Runbooks as YAML data (``library/*.yaml``) and their executor; see docs/runbooks.md."""

from engines.runbooks.executor import BUILTIN, ENV_VAR, Run, RunbookLibrary, default_dirs, read_paths
from engines.runbooks.schema import Runbook, RunbookError

__all__ = ["BUILTIN", "ENV_VAR", "Run", "Runbook", "RunbookError", "RunbookLibrary", "default_dirs", "read_paths"]
