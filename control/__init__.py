"""The control plane: the runtime that drives engines, the single choke point,
the safety gate with its approval queue, and the audit trail.

Decision engines (``engines/``) propose actions; everything here decides
whether, when and how they reach a world, and records that they did.
"""
