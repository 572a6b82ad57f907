"""The G-step rule every schedule-driven callback shares: due at multiples of the period and at the step training
stops at, once per step, never again at the step a resumed run starts from."""

import torch

from gan.callbacks.schedule import GStepCallback


class Recorder(GStepCallback):
    def __init__(self, every_n_g_steps: int) -> None:
        super().__init__(every_n_g_steps)
        self.steps: list[int] = []

    def on_g_step(self, trainer, pl_module) -> None:
        self.steps.append(pl_module.g_step)


def test_due_at_multiples_and_at_the_final_step_once(tmp_path, tiny_fit):
    every2, every3, every9 = Recorder(2), Recorder(3), Recorder(9)
    model, _ = tiny_fit(tmp_path, callbacks=[every2, every3, every9])
    assert model.g_step == 4
    assert (every2.steps, every3.steps, every9.steps) == ([2, 4], [3, 4], [4])


def test_a_resumed_run_does_not_repeat_the_step_it_starts_from(tmp_path, tiny_fit):
    tiny_fit(tmp_path / "first", max_g_steps=2)
    resumed = Recorder(1)
    tiny_fit(tmp_path / "second", ckpt_path=tmp_path / "first" / "ckpt" / "last.ckpt", callbacks=[resumed])
    assert resumed.steps == [3, 4]
    finished = Recorder(1)  # resuming a finished run takes no step: nothing is due, no checkpoint is rewritten
    tiny_fit(tmp_path / "third", ckpt_path=tmp_path / "second" / "ckpt" / "last.ckpt", callbacks=[finished])
    assert finished.steps == [] and not (tmp_path / "third" / "ckpt").exists()


def test_training_ended_by_a_lightning_limit_handles_its_last_step_at_train_end(tmp_path, tiny_fit):
    every5 = Recorder(5)
    model, _ = tiny_fit(tmp_path, callbacks=[every5], trainer={"max_steps": 9})  # 3 optimizer steps per G step
    assert model.g_step == 3 and every5.steps == [3]
    last = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["g_step"] == 3  # the checkpoint callback saved the final state too
