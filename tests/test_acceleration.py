"""The speed switches on the CPU: torch.compile (no graph break in ConvNorm's steady state, same numbers within
float32 rounding), channels-last memory, bf16-mixed precision, the refusals of what needs CUDA, and the direct
(wrapper-free) steps that train bit-identically to Lightning's wrappers whenever no step hook needs them."""

import copy

import pytest
import pytorch_lightning as pl
import torch

from gan.errors import UserError
from gan.models import build_discriminator
from gan.training.module import GAN


def test_an_unknown_compile_mode_is_refused_in_one_line():
    with pytest.raises(UserError, match=r"model.compile='fastest' is not a torch.compile mode; choose one of: default"):
        GAN(arch="cnn", image_size=8, channels=1, compile="fastest")


@pytest.mark.parametrize("switch,match", [
    ({"cuda_graphs": True}, r"model.cuda_graphs records CUDA graphs, which need a CUDA device \(this run is on cpu\)"),
    ({"compile": "reduce-overhead"}, r"model.compile='reduce-overhead' records CUDA graphs.*use model.compile default"),
])
def test_what_needs_cuda_is_refused_before_training_on_the_cpu(tmp_path, switch, match, tiny_fit):
    with pytest.raises(UserError, match=match):
        tiny_fit(tmp_path, **switch)
    assert not (tmp_path / "ckpt").exists()


def train_forward_backward(d, x):
    out = d(x)
    grads = torch.autograd.grad(out.square().sum(), [x, *d.parameters()])
    return out, grads


def test_compiled_convnorm_spectral_discriminator_has_no_graph_break_and_matches_eager():
    torch.manual_seed(0)
    eager = build_discriminator("cnn", 8, 1, norm="convnorm+spectral", width=4)
    x = torch.randn(4, 1, 8, 8, requires_grad=True)
    eager(x)  # the first train forward sizes running_V (a resize, outside any graph)
    compiled_copy = copy.deepcopy(eager)
    compiled = torch.compile(compiled_copy, fullgraph=True)  # fullgraph: any graph break is an error
    for _ in range(2):  # two train forwards: the EMA of V and spectral norm's power iteration advance in the graph
        (out, grads), (ref, ref_grads) = train_forward_backward(compiled, x), train_forward_backward(eager, x)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    for (name, value), ref in zip(compiled_copy.state_dict().items(), eager.state_dict().values()):
        torch.testing.assert_close(value, ref, rtol=1e-5, atol=1e-6, msg=name)
    assert int(compiled_copy.net[0].num_steps) == 3


def test_compile_switch_trains_through_compiled_nets_and_keeps_checkpoint_keys(tmp_path, tiny_fit, tiny_gan_factory):
    # the switch's wiring; ConvNorm's own compiled numbers are checked above (spectral norm compiles faster)
    eager, _ = tiny_fit(tmp_path / "eager", norm="spectral", max_g_steps=2)
    compiled, _ = tiny_fit(tmp_path / "compiled", norm="spectral", max_g_steps=2, compile="default")
    nets = (compiled.steps.generator, compiled.steps.discriminator)
    assert all(isinstance(net, torch._dynamo.eval_frame.OptimizedModule) for net in nets)
    assert compiled.g_step == 2 and list(compiled.state_dict()) == list(eager.state_dict())
    u = "discriminator.net.0.parametrizations.weight.0._u"  # spectral norm's power iteration ran in the graphs
    initial = tiny_gan_factory(norm="spectral").state_dict()[u]
    assert not torch.allclose(eager.state_dict()[u], initial, atol=1e-3)
    torch.testing.assert_close(compiled.state_dict()[u], eager.state_dict()[u], rtol=1e-3, atol=1e-4)
    for key in ("loss/d", "loss/g", "d/real", "d/fake"):  # float32 rounding, then two Adam steps, apart
        assert compiled.last_metrics[key] == pytest.approx(eager.last_metrics[key], rel=1e-3, abs=1e-4), key


def test_channels_last_discriminator_matches_contiguous_and_trains(tmp_path, tiny_fit):
    torch.manual_seed(0)
    d = build_discriminator("cnn", 8, 1, norm="convnorm", width=4)
    d_cl = copy.deepcopy(d).to(memory_format=torch.channels_last)
    x = torch.randn(4, 1, 8, 8, requires_grad=True)
    (out, grads), (ref, ref_grads) = train_forward_backward(d_cl, x.contiguous(memory_format=torch.channels_last)), \
        train_forward_backward(d, x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
    model, _ = tiny_fit(tmp_path, norm="convnorm", max_g_steps=2, channels_last=True)
    weight = model.discriminator.net[2].weight
    assert model.g_step == 2 and weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bf16_mixed_trains_and_scores_like_float32_within_bf16_rounding(tmp_path, tiny_fit):
    model, _ = tiny_fit(tmp_path, norm="convnorm+spectral", max_g_steps=2, trainer={"precision": "bf16-mixed"})
    assert model.g_step == 2 and model.execution.direct  # bf16 needs no loss scaling: the direct steps apply
    assert all(torch.isfinite(p).all() for p in model.parameters())
    d = model.discriminator.eval()
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    with torch.no_grad():
        ref = d(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = d(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=5e-2, atol=5e-2 * ref.abs().max().item())


class StepHooks(pl.Callback):
    def __init__(self) -> None:
        self.calls = {"on_after_backward": 0, "on_before_optimizer_step": 0}

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls["on_after_backward"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.calls["on_before_optimizer_step"] += 1


def test_a_step_hook_keeps_lightnings_wrappers_and_both_paths_train_identically(tmp_path, tiny_fit):
    direct, direct_trainer = tiny_fit(tmp_path / "direct", max_g_steps=3)
    hooks = StepHooks()
    wrapped, wrapped_trainer = tiny_fit(tmp_path / "wrapped", max_g_steps=3, callbacks=[hooks])
    assert direct.execution.direct and not wrapped.execution.direct
    assert hooks.calls == {"on_after_backward": 3 * (2 + 1), "on_before_optimizer_step": 3 * (2 + 1)}
    assert direct_trainer.global_step == wrapped_trainer.global_step == 3 * (2 + 1)
    for (name, value), other in zip(direct.state_dict().items(), wrapped.state_dict().values()):
        assert torch.equal(value, other), name


def test_the_private_apis_gan_relies_on_still_exist():
    # each has no public equivalent and is used in one place (gan.training.execution, gan.training.loggers);
    # an upgrade that moves one must fail here, not silently change what gan does
    import torch._dynamo
    import torch._inductor
    from pytorch_lightning.loggers import CSVLogger
    from pytorch_lightning.loggers.csv_logs import ExperimentWriter
    from pytorch_lightning.strategies import DDPStrategy
    from torch._inductor import cpp_builder

    assert "default" in torch._inductor.list_mode_options()
    assert isinstance(torch._dynamo.is_dynamo_supported(), bool) and callable(cpp_builder.get_cpp_compiler)
    assert DDPStrategy(find_unused_parameters=True)._ddp_kwargs == {"find_unused_parameters": True}
    assert callable(ExperimentWriter._check_log_dir_exists)
    logger = CSVLogger("unused")
    assert logger._experiment is None and logger._fs is not None
