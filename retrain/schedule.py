"""How long to train: until the validation loss stops improving, within a compute budget.

A fixed length is wrong at one end or the other (small data needs many passes, large data a
fraction of one), and a step cap that is reached while the validation loss still falls ends
training too early. So the data decides: a validation split is scored every `eval_every`
steps, and training stops on a *plateau* — `patience` evaluations in a row whose smoothed
validation loss is not at least `min_improvement` (relative) below the best smoothed loss so
far (and at least `min_delta` nats: a loss that slides geometrically towards zero, as a
preference loss does once the held-out pairs are separated, improves by 1 % forever), unless
the latest reading is itself that much below the best one. The adapter is the
best raw measurement's weights, not the last step's. The rate is constant after warm-up,
because the run's length is unknown; so the first `lr_drops` plateaus do not stop training
but cut the rate by `lr_drop_factor` and go on from the best weights (a constant rate leaves
the weights bouncing around the minimum; a lower one settles them). Steps, epochs and
wall-clock minutes are a budget: generous, and reported when one of them, not the plateau,
ended the run.
Evaluation frequency and patience follow the data's size, so that a tiny validation set is
measured often (it is cheap) yet never stops training on a single noisy reading (patience
spans at least `patience_min_steps` steps, and readings are smoothed).
"""

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from retrain.settings import RetrainSettings

T = TypeVar("T")

PLATEAU = "plateau"
STEP_BUDGET = "step budget"
TIME_BUDGET = "time budget"
DIVERGED = "diverged"
FIXED = "fixed length"
RULES = (PLATEAU, STEP_BUDGET, TIME_BUDGET, DIVERGED, FIXED)
# A validation batch is a forward pass, about a third of a training step: evaluating every
# 3 x (validation batches) steps keeps validation near a tenth of the training time.
EVAL_COST_STEPS = 3


@dataclass(frozen=True)
class Plan:
    train_examples: int
    validation_examples: int
    steps_per_epoch: int
    max_steps: int  # the step budget (max_steps and max_epochs); the loop never runs past it
    min_steps: int  # the plateau may not end a run before this
    eval_every: int  # steps between validation losses; 0: no validation, fixed length
    patience: int  # evaluations without a significant improvement before stopping
    min_improvement: float = 0.0  # relative drop of the smoothed loss that counts
    min_delta: float = 0.0  # ...and the least absolute drop (nats) that counts
    smoothing: int = 1  # evaluations in the moving average the rule compares
    warmup_steps: int = 0
    max_minutes: float = 0.0  # the wall-clock budget; 0: none
    lr_drops: int = 0  # plateaus that cut the rate instead of stopping
    lr_drop_factor: float = 0.1
    learning_rate: float = 0.0  # the peak after warm-up (SFT's scaled to the data's size)
    keep_tolerance: float = 0.0  # a later reading this close to the lowest is kept instead

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def validation_size(n: int, settings: RetrainSettings) -> int:
    """A share of the training data, within [validation_min, validation_max]; none when
    switched off or when it would leave fewer training than validation examples."""
    if settings.validation_fraction == 0:
        return 0
    size = round(n * settings.validation_fraction)
    size = min(settings.validation_max, max(settings.validation_min, size))
    return size if n - size >= size else 0


def split_validation(
    keyed: list[tuple[str, T]], settings: RetrainSettings, groups: list[str] | None = None
) -> tuple[list[T], list[T]]:
    """(train, validation) by a hash of each key: stable whatever else is in the data.

    With `groups`, whole groups go to one side: examples that share an answer (a question
    asked three ways, a canned reply) would otherwise validate on what training has seen,
    and the validation loss would keep falling while answers to new questions got worse."""
    size = validation_size(len(keyed), settings)
    group = groups or [key for key, _ in keyed]

    def rank(i: int) -> tuple[bytes, bytes]:
        digest = hashlib.sha256(f"val:{settings.seed}:{group[i]}".encode()).digest()
        return digest, hashlib.sha256(keyed[i][0].encode()).digest()

    chosen: set[int] = set()
    taken: set[str] = set()
    for i in sorted(range(len(keyed)), key=rank):
        if len(chosen) >= size and group[i] not in taken:
            break
        chosen.add(i)
        taken.add(group[i])
    if len(keyed) - len(chosen) < len(chosen):  # one huge group: no validation at all
        chosen = set()
    train = [row for i, (_, row) in enumerate(keyed) if i not in chosen]
    validation = [row for i, (_, row) in enumerate(keyed) if i in chosen]
    return train, validation


def peak_rate(train: int, settings: RetrainSettings) -> float:
    """`learning_rate` up to `learning_rate_examples` training examples, then falling in
    proportion to their count, never below `learning_rate_min` (nor above the rate itself).

    Measured (BENCHMARKS.md, issue 21): 1e-3 did best at 12 to 62 examples. At 235 the rate
    stays constant until a plateau (the run's length is unknown) and a large step keeps the
    weights bouncing around the minimum: 1e-3 and the square-root rule's 5.2e-4 both fell
    below a constant 2e-4 on the support desk; 2.7e-4 (this rule) is above issue 11's
    constant 2e-4 on all three domains' means, 0.01 below the square-root rule on two."""
    s = settings
    if not s.learning_rate_examples or train <= s.learning_rate_examples:
        return s.learning_rate
    scaled = s.learning_rate * s.learning_rate_examples / train
    return max(scaled, min(s.learning_rate_min, s.learning_rate))


def make_plan(train: int, validation: int, settings: RetrainSettings) -> Plan:
    s = settings
    per_epoch = max(1, math.ceil(train / s.batch_size))
    budget = min(s.max_steps, max(1, math.ceil(per_epoch * s.max_epochs)))
    if validation == 0:  # nothing to stop on: a fixed length, within the budget
        cap, every, patience = min(budget, max(1, s.fixed_steps)), 0, 0
    else:
        cap = budget
        batches = math.ceil(validation / s.batch_size)
        auto = min(s.eval_every_max, max(s.eval_every_min, EVAL_COST_STEPS * batches))
        every = min(cap, s.eval_every or auto)
        window = min(s.patience_max_steps, max(s.patience_min_steps, per_epoch * s.patience_epochs))
        patience = s.patience or max(3, math.ceil(window / every))
    return Plan(
        train_examples=train,
        validation_examples=validation,
        steps_per_epoch=per_epoch,
        max_steps=cap,
        min_steps=min(s.min_steps, cap),
        eval_every=every,
        patience=patience,
        min_improvement=s.min_improvement,
        min_delta=s.min_delta,
        smoothing=s.smoothing,
        warmup_steps=min(s.warmup_steps, cap),
        max_minutes=s.max_minutes,
        lr_drops=s.lr_drops if every else 0,
        lr_drop_factor=s.lr_drop_factor,
        learning_rate=peak_rate(train, s),
        keep_tolerance=s.keep_tolerance,
    )


def learning_rate_at(step: int, plan: Plan, peak: float) -> float:
    """Linear warm-up to `peak` over the first steps, then constant: the run's length is not
    known in advance (the plateau decides), so no schedule that needs it."""
    if plan.warmup_steps <= 0:
        return peak
    return peak * min(1.0, (step + 1) / plan.warmup_steps)


@dataclass
class EarlyStopping:
    """The validation curve, the best step, and which rule ended training."""

    plan: Plan
    curve: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = 0  # the weights kept: the lowest raw loss, or a later one near it
    best_loss: float = math.inf
    lowest: float = math.inf  # the lowest raw loss
    reference: float = math.inf  # lowest smoothed loss that counted as an improvement
    since_best: int = 0  # evaluations since the smoothed loss last improved enough
    diverged: bool = False
    new_low: bool = False  # the latest reading beat the best by `min_improvement`
    drops: list[int] = field(default_factory=list)  # steps where a plateau cut the rate

    def due(self, step: int) -> bool:
        every = self.plan.eval_every
        return every > 0 and (step % every == 0 or step == self.plan.max_steps)

    def smoothed(self) -> float:
        window = [loss for _, loss in self.curve[-max(1, self.plan.smoothing) :]]
        return sum(window) / len(window)

    def below(self, level: float) -> float:
        """What a loss must be under to count as an improvement on `level`."""
        p = self.plan
        return min(level * (1 - p.min_improvement), level - p.min_delta)

    def record(self, step: int, loss: float) -> bool:
        """Add a measurement; True when it is the lowest so far (keep these weights)."""
        if not math.isfinite(loss):
            self.diverged = True
            return False
        self.curve.append((step, round(loss, 6)))
        level = self.smoothed()
        if level < self.below(self.reference):
            self.reference, self.since_best = level, 0
        else:
            self.since_best += 1
        self.new_low = loss < self.below(self.lowest)
        lower = loss < self.lowest
        self.lowest = min(self.lowest, loss)
        near = self.plan.keep_tolerance > 0 and loss <= self.lowest * (1 + self.plan.keep_tolerance)
        if lower or near:
            self.best_step, self.best_loss = step, loss
            return True
        return False

    def plateaued(self, step: int) -> bool:
        """`patience` readings without a significant improvement, and the latest is not a
        new low by the tolerance: a run that just beat its best reading clearly is still
        improving, whatever the average says."""
        enough = self.since_best >= self.plan.patience > 0
        return step >= self.plan.min_steps and enough and not self.new_low

    def lr_scale(self) -> float:
        """The factor on the scheduled rate: one `lr_drop_factor` per plateau so far."""
        return self.plan.lr_drop_factor ** len(self.drops)

    def drop_due(self, step: int) -> bool:
        """A plateau with rate cuts left: cut the rate (and go back to the best weights)
        instead of stopping."""
        left = len(self.drops) < self.plan.lr_drops and step < self.plan.max_steps
        return left and not self.diverged and self.plateaued(step)

    def drop(self, step: int) -> None:
        """The rate is cut at `step`: patience starts over against the best level so far."""
        self.drops.append(step)
        self.since_best, self.new_low = 0, False

    def should_stop(self, step: int, elapsed_s: float = 0.0) -> bool:
        return self.diverged or self.plateaued(step) or self.out_of_time(elapsed_s)

    def out_of_time(self, elapsed_s: float) -> bool:
        return self.plan.max_minutes > 0 and elapsed_s >= self.plan.max_minutes * 60

    def rule(self, step: int, elapsed_s: float = 0.0) -> str:
        """Which rule ended a run that stopped at `step` (one of RULES)."""
        if self.plan.eval_every == 0:
            return FIXED
        if self.diverged:
            return DIVERGED
        if self.plateaued(step):
            return PLATEAU
        if self.out_of_time(elapsed_s):
            return TIME_BUDGET
        return STEP_BUDGET

    def reason(self, step: int, elapsed_s: float = 0.0, rule: str | None = None) -> str:
        p, rule = self.plan, rule or self.rule(step, elapsed_s)
        best = f"best at step {self.best_step}"
        if rule == FIXED:
            return f"fixed length: {step} steps (no validation split to stop on)"
        if rule == DIVERGED:
            return f"diverged: validation loss not finite after step {step}; {best}"
        if self.drops:
            cuts = ", ".join(str(s) for s in self.drops)
            best += f" (rate cut to {self.lr_scale():g}x at step {cuts})"
        if rule == PLATEAU:
            least = f"{p.min_improvement:.0%}" + (f" (or {p.min_delta:g})" if p.min_delta else "")
            return (
                f"plateau at step {step}: validation loss improved less than {least} "
                f"in {p.patience} evaluations "
                f"({p.patience * p.eval_every} steps); {best}"
            )
        trend = "still improving" if self.since_best == 0 else "levelling off"
        if rule == TIME_BUDGET:
            return f"time budget of {p.max_minutes:g} min reached at step {step} ({trend}); {best}"
        return f"step budget of {p.max_steps} steps reached ({trend}); {best}"

    def state(self) -> dict[str, Any]:
        return {
            "curve": self.curve,
            "best_step": self.best_step,
            "best_loss": self.best_loss,
            "lowest": self.lowest,
            "reference": self.reference,
            "since_best": self.since_best,
            "diverged": self.diverged,
            "new_low": self.new_low,
            "drops": self.drops,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.curve = [(int(s), float(v)) for s, v in state.get("curve", [])]
        self.best_step = int(state.get("best_step", 0))
        self.best_loss = float(state.get("best_loss", math.inf))
        self.lowest = float(state.get("lowest", self.best_loss))
        self.reference = float(state.get("reference", self.best_loss))
        self.since_best = int(state.get("since_best", 0))
        self.diverged = bool(state.get("diverged", False))
        self.new_low = bool(state.get("new_low", False))
        self.drops = [int(s) for s in state.get("drops", [])]
