"""Settings that cannot act in the run as planned are refused, naming the key (a warm-up as long
as the run, a threshold never fitted), and a schedule's milestones past the run's end are
warned about and recorded in metrics.json: what ran is what is recorded."""

import pytest

from phuber.core.errors import ConfigError, InvalidValue
from phuber.losses import OGC_CE, NegativeLabelSmoothing, RunPlan
from phuber.training import run as train
from phuber.training.trainer import Trainer


def test_steps_and_examples_of_a_plan_count_a_short_last_batch():
    plan = RunPlan(epochs=3, train_size=10, batch_size=4)  # batches of 4, 4, 2 per epoch
    sizes = [4, 4, 2] * 3
    assert plan.steps_per_epoch == 3
    assert [plan.seen(k) for k in range(10)] == [sum(sizes[:k]) for k in range(10)]


def test_nls_whose_warm_up_is_the_whole_run_is_refused(tiny_cfg, tmp_path):
    NegativeLabelSmoothing(warmup_epochs=2).check_plan(RunPlan(3, 100, 10))
    with pytest.raises(InvalidValue, match=r"< hparams\.epochs=3"):
        NegativeLabelSmoothing(warmup_epochs=3).check_plan(RunPlan(3, 100, 10))
    cfg = tiny_cfg("loss=nls", "loss.warmup_epochs=1", "hparams.epochs=1")
    with pytest.raises(ConfigError, match=r"loss.warmup_epochs=1: must be < hparams.epochs=1"):
        train.run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.json").exists()  # refused before anything is written


@pytest.mark.parametrize(
    "plan,q,s,refused",
    [
        (RunPlan(20, 4000, 32), 4096, 32, False),  # LeNet's recipe on the embedded digits
        (RunPlan(1, 400, 32), 4096, 32, True),  # 13 steps: no fit step at all
        (RunPlan(2, 1000, 10), 4096, 32, True),  # 200 steps, 2,000 examples
        (RunPlan(2, 1000, 10), 2000, 32, True),  # full at step 200; fit steps 192, 224
        (RunPlan(2, 1000, 10), 1920, 32, False),  # full at step 192, a fit step
    ],
)
def test_ogc_whose_threshold_would_never_be_fitted_is_refused(plan, q, s, refused):
    loss = OGC_CE(queue_size_q=q, time_frame_s=s)
    if not refused:
        loss.check_plan(plan)
        return
    with pytest.raises(InvalidValue) as err:
        loss.check_plan(plan)
    (line,) = err.value.lines("loss")
    assert line.startswith(f"loss.time_frame_s={s}, loss.queue_size_q={q}: must be small")


def test_milestones_past_the_end_are_warned_about_and_recorded(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model=resnet18", "hparams.epochs=20")  # the recipe: ×0.1 at 15 and 25
    trainer = Trainer(cfg, tmp_path)
    (warning,) = trainer.data.facts()[0]["warnings"]
    assert "hparams.scheduler.milestones=[15, 25]: [25] lie at or past the run's end" in warning
