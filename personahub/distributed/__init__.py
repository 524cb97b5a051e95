"""The Ray engine: the build and synthesis stages on Ray Data (``--engine ray``).

Ray is imported lazily, inside these modules' functions, so the local engine (the default)
never pays its import time and works without it. :mod:`.engine` starts or joins Ray
(``--ray-address``); :mod:`.ray_dedup` holds MinHash and embedding dedup; and
:mod:`.ray_synthesis` runs ``personahub synthesize`` as ``map_batches`` over the gateway.
"""

from __future__ import annotations

from personahub.distributed.engine import ENGINES, EngineError, check_engine, init_ray

__all__ = ["ENGINES", "EngineError", "check_engine", "init_ray"]
