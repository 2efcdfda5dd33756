"""Budget management (issue 9 §4): see :mod:`engines.budget.engine` and docs/budgets.md."""

from engines.budget.config import CAP_SETTING, CAP_UNTIL_SETTING, PRIORITY_SETTING, BudgetManagerConfig
from engines.budget.engine import BudgetManager, priority_of
from engines.budget.forecast import Forecast, SpendSeries

__all__ = ["CAP_SETTING", "CAP_UNTIL_SETTING", "PRIORITY_SETTING", "BudgetManager", "BudgetManagerConfig",
           "Forecast", "SpendSeries", "priority_of"]
