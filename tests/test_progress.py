"""The progress bar counts G steps out of max_g_steps and shows the last logged losses."""

from gan.callbacks import GStepProgressBar


def test_bar_counts_g_steps_and_shows_the_losses(tmp_path, tiny_fit, capfd):
    tiny_fit(tmp_path, callbacks=[GStepProgressBar()], trainer={"enable_progress_bar": True})
    captured = capfd.readouterr()
    bar = (captured.out + captured.err).split("\r")
    states = [text for text in bar if text.startswith("G steps:")]
    assert [s.split("|")[2].split()[0] for s in states[1:5]] == ["1/4", "2/4", "3/4", "4/4"]
    assert all(f"{key}=" in states[4] for key in ("d", "g", "g_steps_per_s"))
