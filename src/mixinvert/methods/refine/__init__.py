"""``eami+refine``: EAMI's estimate refined per song (:mod:`.pipeline`), the CMA-ES search
on the real console (:mod:`.cma_search`, :mod:`.objective`) and the uncertainty
(:mod:`.uncertainty`)."""

from mixinvert.methods.refine.pipeline import (
    ALL_EFFECTS,
    EFFECTS,
    RefineConfig,
    RefineResult,
    free_mask,
    refine,
)

__all__ = ["ALL_EFFECTS", "EFFECTS", "RefineConfig", "RefineResult", "free_mask", "refine"]
