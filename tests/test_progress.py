"""Progress bars: to the file named by $EMOTIONS_PROGRESS_FILE (not the notebook), streamed to the console."""

import io
import os

from emotions.core import progress
from emotions.pipeline.progress_echo import ProgressTail, stream_progress


def test_bars_go_to_the_progress_file_and_the_console_shows_epoch_loss_speed_and_eta(tmp_path):
    out = io.StringIO()
    path = tmp_path / "04_train.progress"
    with stream_progress(path, out=out, interval=0.05, every=0.0) as tail:
        assert os.environ[progress.PROGRESS_FILE_ENV] == str(path)
        for epoch in (1, 2):
            bar = progress.tqdm(total=4, desc=f"epoch {epoch}/2", mininterval=0)
            for _ in range(4):
                bar.update(1)
                bar.set_postfix(loss="0.5000", samples_s="12.0")
                tail.poll()
            bar.close()
    assert progress.PROGRESS_FILE_ENV not in os.environ
    lines = [l.strip() for l in out.getvalue().splitlines() if l.strip()]
    finished = [l for l in lines if "4/4" in l]
    assert any(l.startswith("epoch 1/2") for l in finished) and any(l.startswith("epoch 2/2") for l in finished)
    assert all("loss=0.5000" in l and "samples_s=12.0" in l for l in finished)
    assert any("<" in l for l in lines)                        # tqdm's [elapsed<ETA]
    assert "\r" not in out.getvalue()                          # not a terminal: whole lines only


def test_without_the_variable_bars_go_to_stderr(monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_FILE_ENV, raising=False)
    import sys
    assert progress.progress_stream() is sys.stderr


def test_a_terminal_gets_the_current_bar_redrawn_in_place(tmp_path):
    path = tmp_path / "p.progress"
    path.write_text("epoch 1/3:  50%|#####     | 2/4 [00:02<00:02, loss=0.7]\r"
                    "epoch 1/3:  75%|#######5  | 3/4 [00:03<00:01, loss=0.6]", encoding="utf-8")
    out = io.StringIO()
    tail = ProgressTail(path, out=out, live=True)
    tail.poll()
    assert out.getvalue().startswith("\r") and "3/4" in out.getvalue() and "2/4" not in out.getvalue()
    tail.close()
    assert out.getvalue().endswith("\r")
