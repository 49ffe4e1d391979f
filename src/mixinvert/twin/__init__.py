"""The differentiable twin of console v1 and its fit to a mix.

:mod:`.model` (the chain in PyTorch, stage by stage), :mod:`.responses` and
:mod:`.ballistics` (its EQ, reverb and compressor kernels, fused for speed), :mod:`.fit`
(Adam on the twin against a reference mix, under a work budget).
"""
