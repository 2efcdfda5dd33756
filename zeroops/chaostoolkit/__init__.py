"""A Chaos Toolkit extension for zeroops: actions and probes on the twin or a live OpenStack (docs/chaos.md).

Name its functions in an experiment's providers: ``{type: python, module: zeroops.chaostoolkit.actions,
func: inject_fault, arguments: {fault: server_crash, target: api}}``; the world is chosen by the
experiment's ``configuration`` (see :mod:`zeroops.chaostoolkit.session`).
"""
