"""The optimizer side of recorded steps (gan.training.cuda_graphs), checkable on the CPU: switching Adam to its
device-side (capturable) form and back, also through a checkpoint, continues training exactly; learning rates are set
in place when they are tensors. (Recording and replaying CUDA graphs needs a GPU: `gan bench gpu` checks it there.)"""

import torch

from gan.training.cuda_graphs import set_capturable, set_learning_rate


def adam_run(steps, switch=None, seed=0):
    torch.manual_seed(seed)
    w = torch.nn.Parameter(torch.randn(5, 3))
    opt = torch.optim.Adam([w], lr=1e-2, betas=(0.0, 0.9))
    for i in range(steps):
        if switch is not None and i in switch:
            switch[i](opt)
        opt.zero_grad()
        (w.sin() * torch.arange(15.0).view(5, 3)).sum().backward()
        opt.step()
    return w.detach(), opt


def round_trip(opt):  # (a capturable step itself needs a GPU)
    set_capturable(opt, True)
    set_capturable(opt, False)


def test_switching_to_capturable_and_back_continues_exactly():
    reference, _ = adam_run(6)
    switched, opt = adam_run(6, {2: round_trip, 4: round_trip})
    assert torch.equal(switched, reference)
    group, state = opt.param_groups[0], next(iter(opt.state.values()))
    assert group["capturable"] is False and isinstance(group["lr"], float)
    assert state["step"].device.type == "cpu" and state["step"].dtype == torch.float32 and float(state["step"]) == 6


def test_capturable_form_has_device_tensors_and_rates_set_in_place():
    _, opt = adam_run(2)
    set_capturable(opt, True)
    group, state = opt.param_groups[0], next(iter(opt.state.values()))
    lr = group["lr"]
    assert group["capturable"] is True and isinstance(lr, torch.Tensor) and lr == torch.tensor(1e-2)
    assert state["step"].device == group["params"][0].device and state["step"].dtype == torch.float32
    set_learning_rate(opt, 5e-3)
    assert group["lr"] is lr and lr == torch.tensor(5e-3)  # the same tensor: a recorded step reads it there
    set_capturable(opt, False)
    set_learning_rate(opt, 1e-3)
    assert group["lr"] == 1e-3


def test_a_checkpoint_of_the_capturable_form_resumes_in_the_host_form(tmp_path):
    reference, _ = adam_run(5)
    trained, opt = adam_run(3)
    set_capturable(opt, True)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    w = torch.nn.Parameter(trained.clone())
    fresh = torch.optim.Adam([w], lr=1e-2, betas=(0.0, 0.9))
    fresh.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    set_capturable(fresh, False)  # what the module does at train start without model.cuda_graphs
    for _ in range(2):
        fresh.zero_grad()
        (w.sin() * torch.arange(15.0).view(5, 3)).sum().backward()
        fresh.step()
    assert torch.equal(w.detach(), reference)
