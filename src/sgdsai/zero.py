"""`ZeroRedundancyOptimizer` around SGD-SaI, with a reference $M$ shared by all ranks.

ZeRO gives each rank whole tensors, so each rank measures only its own; without a shared
reference every rank would normalise by its own maximum (see docs/distributed.md).
"""

from __future__ import annotations

from typing import Any

from sgdsai.optimizer import SGDSaI

__all__ = ["zero_redundancy_sgdsai"]


def zero_redundancy_sgdsai(params: Any, *args: Any, process_group: Any = None, **kwargs: Any) -> Any:
    """`ZeroRedundancyOptimizer(params, SGDSaI, ...)` whose reference $M$ is global.

    `args` and `kwargs` go to `sgdsai.SGDSaI`; `process_group` to ZeRO, whose group then also
    reduces $M$ (one `all_reduce` at the first measuring step).
    """
    from torch.distributed.optim import ZeroRedundancyOptimizer

    if args:
        kwargs = dict(zip(("lr", "momentum", "weight_decay", "eps"), args)) | kwargs
    zero = ZeroRedundancyOptimizer(params, SGDSaI, process_group=process_group, **kwargs)
    zero.optim.reference_group = zero.process_group
    return zero
