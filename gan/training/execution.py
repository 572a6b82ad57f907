"""The GAN module's speed switches, checked before training: ``model.compile`` (torch.compile of G and D),
``model.channels_last`` and ``model.cuda_graphs`` (whole steps as CUDA graphs, :mod:`gan.training.cuda_graphs`).

Each refusal is one line naming the switch, why this machine or run cannot use it, and what to set instead.
"""

from __future__ import annotations

import torch

from gan.errors import UserError

CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes that record CUDA graphs themselves


def compile_modes() -> tuple[str, ...]:
    """The torch.compile modes this torch knows (``default``, ``reduce-overhead``, ``max-autotune``, ...)."""
    import torch._inductor

    return tuple(torch._inductor.list_mode_options())


def check_compile_mode(mode: str | None) -> str | None:
    if mode is not None and mode not in compile_modes():
        raise UserError(f"model.compile={mode!r} is not a torch.compile mode; choose one of: "
                        f"{', '.join(compile_modes())} (or null to train eagerly)")
    return mode


def check_switches(compile_mode: str | None, cuda_graphs: bool, device: torch.device, world_size: int,
                   precision: str) -> None:
    """Refuse, before training starts, the switches this machine or run cannot use."""
    if compile_mode is not None:
        if not torch._dynamo.is_dynamo_supported():
            raise UserError(f"model.compile={compile_mode!r}: torch.compile does not support this Python / platform; "
                            "set model.compile null")
        if device.type == "cpu":
            from torch._inductor import cpp_builder

            try:
                cpp_builder.get_cpp_compiler()
            except Exception as err:  # noqa: BLE001 - inductor says it in several ways
                raise UserError(f"model.compile={compile_mode!r}: torch.compile needs a C++ compiler on the CPU "
                                f"({err}); install g++ or set model.compile null") from err
        if compile_mode == "reduce-overhead" and device.type != "cuda":
            raise UserError(f"model.compile={compile_mode!r} records CUDA graphs, which need a CUDA device (this run "
                            f"is on {device.type}); use model.compile default")
    if not cuda_graphs:
        return
    if device.type != "cuda":
        raise UserError(f"model.cuda_graphs records CUDA graphs, which need a CUDA device (this run is on "
                        f"{device.type}); set model.cuda_graphs false")
    if world_size > 1:
        raise UserError("model.cuda_graphs records one process's steps; with several processes (DDP) set "
                        "model.cuda_graphs false and use model.compile")
    if compile_mode in CUDA_GRAPH_MODES:
        raise UserError(f"model.cuda_graphs records whole steps, which model.compile={compile_mode!r} cannot sit "
                        "inside (it records its own graphs); use model.compile default or max-autotune-no-cudagraphs")
    if str(precision).startswith("16"):
        raise UserError(f"model.cuda_graphs: trainer.precision={precision} scales the loss with a host-side check "
                        "on every step, which a CUDA graph cannot record; use bf16-mixed or 32")
