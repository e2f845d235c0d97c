"""One training loop for every caller: scripts.train_zoo, scripts.train, the Train page.

Long on purpose: the settings, their limits, the loop and its progress are one contract that
every caller shares.

Reproducible (seeded), validation taken from the training digits (the test
set only gives the final score), progress reported per batch and per epoch
through a ``TrainingProgress`` object, and stoppable from another thread
through a ``threading.Event`` checked after every batch. Keras is imported
when a training starts: the web server imports this module for its settings
and never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from model_zoo import architectures, augment, config, data
from model_zoo.config import SettingsError, whole_number_from_env

if TYPE_CHECKING:
    import keras

OPTIMIZERS = {"adam": "Adam", "sgd": "SGD with momentum 0.9", "rmsprop": "RMSprop"}  # name → label
MAX_BATCH_LOSS_POINTS = 1000  # records keep a thinned per-batch loss curve
SMOOTHING = 0.9  # exponential moving average of the per-batch loss, as TensorBoard's slider
# Each pen-stroke digit of a train writer is drawn this many times, each by its own varied hand
# (strokes.PEN_TRAINING_HAND): 28,288 images from UNIPEN's 88 train writers, a sixth of cnn_robust's finish.
PEN_RENDERS = 4
# Fine-tuning: a few epochs at a low rate, on a share of MNIST beside the class's digits, so that a
# class's few hundred digits matter in a minute or two without the model forgetting MNIST.
# The Train page's defaults and scripts.experiments.class_finetune's.
FINE_TUNE_DEFAULTS = {"epochs": 3, "learning_rate": 1e-4, "lr_decay": False}
FINE_TUNE_TRAIN_SIZE = 10_000
# The Train page's defaults for a class: about 20 s a job on a 2-core machine (docs/performance.md),
# so that thirty learners' jobs end within a lesson; the tutorial's settings are one click away.
CLASS_SIZED = {
    "mlp_1x500": {"train_size": 30_000},
    "mlp_5x50_dropout_50ep": {"train_size": 4_000},
    "mlp_5x500_dropout": {"epochs": 5, "train_size": 12_000},
    "cnn": {"epochs": 2, "train_size": 12_000},
    "cnn_robust": {"epochs": 2, "train_size": 3_000, "usps": False, "strokes": False},
}


@dataclass(frozen=True)
class TrainingLimits:
    """Caps that keep one student from freezing a classroom server.

    Whoever runs the server can change them with DIGIT_ZOO_MAX_EPOCHS,
    DIGIT_ZOO_MAX_WIDTH, DIGIT_ZOO_MAX_HIDDEN_LAYERS, DIGIT_ZOO_MAX_TRAIN_SIZE,
    and set a time budget a job with DIGIT_ZOO_MAX_JOB_MINUTES (none by default:
    ``jobs.submit`` checks it against the job's estimate).
    """

    max_epochs: int = 100
    max_width: int = 1024
    max_hidden_layers: int = 8
    max_train_size: int = 60_000
    min_train_size: int = 100
    batch_size: tuple[int, int] = (8, 2048)
    learning_rate: tuple[float, float] = (1e-5, 1.0)
    val_fraction: tuple[float, float] = (0.01, 0.5)
    dropout: tuple[float, float] = (0.0, 0.9)
    max_job_minutes: int = 0  # 0: no budget

    @classmethod
    def from_env(cls) -> TrainingLimits:
        env = {
            "max_epochs": "DIGIT_ZOO_MAX_EPOCHS",
            "max_width": "DIGIT_ZOO_MAX_WIDTH",
            "max_hidden_layers": "DIGIT_ZOO_MAX_HIDDEN_LAYERS",
            "max_train_size": "DIGIT_ZOO_MAX_TRAIN_SIZE",
            "max_job_minutes": "DIGIT_ZOO_MAX_JOB_MINUTES",
        }
        defaults = cls()
        return cls(**{name: whole_number_from_env(variable, getattr(defaults, name)) for name, variable in env.items()})


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that decides a training run. Defaults: the architecture's own."""

    arch: str
    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3
    lr_decay: bool = False  # cosine decay to 0 over the run
    optimizer: str = "adam"
    dropout: float = 0.0
    width: int = 0  # MLPs only
    hidden_layers: int = 0  # MLPs only
    train_size: int = 60_000  # digits taken from the 60,000 (validation comes out of these)
    val_fraction: float = 0.1
    augment: bool = False
    usps: bool = False  # add USPS's training digits to the training split (validation stays MNIST)
    strokes: bool = False  # add the training digits redrawn with the canvas's pen (model_zoo.strokes)
    unipen: bool = False  # add UNIPEN's real pen strokes of its train writers, drawn with the canvas's pen
    class_digits: str = ""  # add this class's kept digits (their train part; model_zoo.class_digits)
    fine_tune: bool = False  # start from the shipped model's weights instead of random ones
    seed: int = 0

    @classmethod
    def for_architecture(cls, arch: str, *, class_sized: bool = False, **overrides) -> TrainingSettings:
        """The tutorial's settings of ``arch`` (``class_sized``: a class's quicker ones), then ``overrides``."""
        spec = architectures.get(arch)
        defaults = dict(
            arch=arch,
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            lr_decay=spec.lr_decay,
            dropout=spec.dropout,
            width=spec.width,
            hidden_layers=spec.hidden_layers,
            augment=spec.augment,
            usps=spec.usps,
            strokes=spec.strokes,
        )
        sized = CLASS_SIZED.get(arch, {}) if class_sized else {}
        return cls(**(defaults | sized | overrides))

    def validate(self, limits: TrainingLimits | None = None) -> TrainingSettings:
        """Return self, or raise SettingsError naming the value and the allowed range."""
        limits = limits or TrainingLimits.from_env()
        spec = architectures.get(self.arch)
        problems = []

        def check(name, value, low, high):
            if not low <= value <= high:
                low, high, value = (n if isinstance(n, int) else f"{n:g}" for n in (low, high, value))
                problems.append(f"{name} must be between {low} and {high}, got {value}")

        check("epochs", self.epochs, 1, limits.max_epochs)
        check("batch size", self.batch_size, *limits.batch_size)
        check("learning rate", self.learning_rate, *limits.learning_rate)
        check("dropout", self.dropout, *limits.dropout)
        check("training digits", self.train_size, limits.min_train_size, limits.max_train_size)
        check("validation fraction", self.val_fraction, *limits.val_fraction)
        check("seed", self.seed, 0, MAX_SEED)
        if spec.family == "mlp":
            check("width", self.width, 1, limits.max_width)
            check("hidden layers", self.hidden_layers, 1, limits.max_hidden_layers)
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if problems:
            raise SettingsError("Invalid training settings: " + "; ".join(problems) + ".")
        return self


MAX_SEED = 2**32 - 1  # NumPy's and Keras's seeds are unsigned 32-bit


class TrainingProgress:
    """Receives progress from ``train``; subclass and override what you need.

    Called from the training thread: implementations must be thread-safe.
    """

    def on_start(self, settings: TrainingSettings, steps_per_epoch: int, train_digits: int) -> None: ...

    def on_batch(self, epoch: int, step: int, loss: float) -> None: ...

    def on_epoch(self, epoch: int, metrics: dict[str, float], seconds: float) -> None: ...


@dataclass
class TrainingResult:
    model: keras.Model
    settings: TrainingSettings
    history: dict[str, list[float]]  # loss, accuracy, val_loss, val_accuracy per epoch
    batch_loss: list[list]  # [global step, running epoch loss], thinned
    seconds_per_epoch: list[float]
    test_accuracy: float
    stopped_early: bool
    data_sha256: str
    train_digits: int
    val_digits: int
    class_record: dict | None = None  # with settings.class_digits: the class part of the record
    pen_record: dict | None = None  # with settings.unipen: which writers it learnt from, which it did not

    @property
    def epochs_done(self) -> int:
        return len(self.seconds_per_epoch)

    @property
    def epochs_trained(self) -> float:
        """Epochs' worth of digits trained: a stop in the middle of an epoch counts its part only."""
        return self.digits_trained / self.train_digits if self.train_digits else 0.0

    @property
    def digits_trained(self) -> int:
        """Digits seen in training, a stopped last epoch counted up to its last batch."""
        batches = self.batch_loss[-1][0] if self.batch_loss else 0  # the last point is always kept
        return min(batches * self.settings.batch_size, self.epochs_done * self.train_digits)

    def record(self) -> dict:
        """The training part of a zoo record (the store adds file facts)."""
        return (
            {
                "arch": self.settings.arch,
                "settings": dataclasses.asdict(self.settings),
                "epochs_done": self.epochs_done,  # as Keras ran them: a stopped epoch ends early, and counts
                "epochs_trained": round(self.epochs_trained, 3),
                "stopped_early": self.stopped_early,
                "history": self.history,
                "batch_loss": self.batch_loss,
                "seconds_per_epoch": self.seconds_per_epoch,
                "test_accuracy": self.test_accuracy,
                "train_digits": self.train_digits,
                "val_digits": self.val_digits,
                "data_sha256": self.data_sha256,
            }
            | ({"class_digits": self.class_record} if self.class_record else {})
            | ({"pen_digits": self.pen_record} if self.pen_record else {})
        )


class LossCurve:
    """A loss per batch, thinned as it grows to at most ``limit`` points by doubling the stride.

    The last point added is always kept; ``smoothed`` is a debiased moving
    average over every point added, not only the kept ones.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.smoothed: list[float] = []
        self._stride, self._seen, self._average, self._weight = 1, 0, 0.0, 0.0
        self._last: tuple[int, float, float] | None = None  # the newest point if the stride skipped it

    def add(self, step: int, loss: float) -> None:
        self._average = SMOOTHING * self._average + (1 - SMOOTHING) * loss
        self._weight = SMOOTHING * self._weight + (1 - SMOOTHING)
        point = (int(step), round(float(loss), 5), round(self._average / self._weight, 5))
        self._seen += 1
        if (self._seen - 1) % self._stride:
            self._last = point
            return
        self._last = None
        for values, value in zip((self.steps, self.loss, self.smoothed), point):
            values.append(value)
        if len(self.steps) > self.limit:
            self.steps, self.loss, self.smoothed = self.steps[::2], self.loss[::2], self.smoothed[::2]
            self._stride *= 2

    def points(self) -> tuple[list[int], list[float], list[float]]:
        """(steps, loss, smoothed), the newest point included."""
        extra = [self._last] if self._last else []
        return (
            [*self.steps, *(p[0] for p in extra)],
            [*self.loss, *(p[1] for p in extra)],
            [*self.smoothed, *(p[2] for p in extra)],
        )


class _Reporter:
    """Bridges Keras callbacks to TrainingProgress and the stop event."""

    def __init__(self, model: keras.Model, progress: TrainingProgress, stop: threading.Event | None, steps: int):
        self.model, self.progress, self.stop, self.steps = model, progress, stop, steps
        self.batch_loss = LossCurve(MAX_BATCH_LOSS_POINTS)  # the running mean of each epoch
        self.seconds: list[float] = []
        self.stopped = False
        self._epoch = 0
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._started = epoch, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = float(logs["loss"])  # running mean over the epoch so far
        self.batch_loss.add(self._epoch * self.steps + batch + 1, loss)
        self.progress.on_batch(self._epoch, batch + 1, loss)
        if self.stop is not None and self.stop.is_set():
            self.model.stop_training = True
            self.stopped = True

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        self.seconds.append(seconds)
        self.progress.on_epoch(epoch + 1, {k: float(v) for k, v in logs.items()}, seconds)

    def callback(self) -> keras.callbacks.Callback:
        import keras

        return keras.callbacks.LambdaCallback(
            on_epoch_begin=self.on_epoch_begin,
            on_train_batch_end=self.on_train_batch_end,
            on_epoch_end=self.on_epoch_end,
        )


def split_train_validation(x, y, settings: TrainingSettings):
    """A seeded subset of the training digits, split into train and validation."""
    order = np.random.default_rng(settings.seed).permutation(len(x))[: settings.train_size]
    n_val = max(1, round(len(order) * settings.val_fraction))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def _optimizer(settings: TrainingSettings, total_steps: int) -> keras.optimizers.Optimizer:
    import keras

    rate = settings.learning_rate
    if settings.lr_decay:
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=total_steps)
    if settings.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9)
    if settings.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate)
    return keras.optimizers.Adam(rate)


def train(
    settings: TrainingSettings,
    *,
    mnist: tuple[data.Split, data.Split],
    usps=None,
    pen=None,
    class_set=None,
    shipped: bytes | None = None,
    progress: TrainingProgress | None = None,
    stop: threading.Event | None = None,
    limits: TrainingLimits | None = None,
    tensorboard_dir: str | os.PathLike | None = None,
) -> TrainingResult:
    """Train one model on the digits given, and score it on MNIST's test set.

    The caller hands over everything trained on (``training_inputs.gather``
    reads it for a job): ``mnist`` is ``((x_train, y_train), (x_test, y_test))``
    as from ``data.load_mnist``; ``usps`` likewise from ``data.load_usps``,
    needed with ``settings.usps`` (its test digits are never used); ``pen`` the
    list from ``data.load_pen_digits``, needed with ``settings.unipen``: its
    train writers' digits are trained on, its validation writers' give
    ``pen_val_accuracy`` each epoch, its test writers' are never touched;
    ``class_set`` is ``((x_train, y_train), (x_held_out, y_held_out))``,
    needed with ``settings.class_digits``; and ``shipped`` the shipped model of
    ``settings.arch`` as ``.keras`` bytes, needed with ``settings.fine_tune``:
    fine-tuning starts from it, and it is the "before" of the class's held-out
    accuracy. A set ``stop`` event ends training after the current batch; the
    partly trained model is returned.
    """
    missing = [
        name
        for name, asked, given in (
            ("usps", settings.usps, usps),
            ("pen", settings.unipen, pen),
            ("class_set", settings.class_digits, class_set),
            ("shipped", settings.fine_tune, shipped),
        )
        if asked and given is None
    ]
    if missing:
        raise TypeError(f"train() needs {', '.join(missing)} for these settings (training_inputs.gather reads them).")
    import keras

    settings.validate(limits)
    progress = progress or TrainingProgress()
    (x_all, y_all), (x_test, y_test) = mnist
    (x_train, y_train), (x_val, y_val) = split_train_validation(x_all, y_all, settings)
    if settings.usps:
        (x_usps, y_usps), _ = usps
        x_all, y_all = np.concatenate([x_all, x_usps]), np.concatenate([y_all, y_usps])
        x_train, y_train = np.concatenate([x_train, x_usps]), np.concatenate([y_train, y_usps])
    if settings.strokes:
        # The same digits redrawn with a round pen as the canvas draws them, beside the scans;
        # validation gets its digits' pen versions too. Cached in data/strokes/ after the first run.
        from model_zoo import strokes  # scikit-image: a training-time dependency only

        # The 1s once more, with a flag: the tracer finds few in American handwriting.
        pen_train = np.concatenate(
            [strokes.pen_versions(x_train), strokes.pen_versions(x_train[y_train == 1], european_ones=True)]
        )
        pen_val = np.concatenate(
            [strokes.pen_versions(x_val), strokes.pen_versions(x_val[y_val == 1], european_ones=True)]
        )
        y_pen_train = np.concatenate([y_train, y_train[y_train == 1]])
        y_pen_val = np.concatenate([y_val, y_val[y_val == 1]])
        x_all, y_all = np.concatenate([x_all, pen_train, pen_val]), np.concatenate([y_all, y_pen_train, y_pen_val])
        x_train, y_train = np.concatenate([x_train, pen_train]), np.concatenate([y_train, y_pen_train])
        x_val, y_val = np.concatenate([x_val, pen_val]), np.concatenate([y_val, y_pen_val])
    pen_parts = None
    if settings.unipen:
        from model_zoo import strokes  # training-time only, as above

        pen_parts = data.pen_split(pen)
        x_pen, y_pen = strokes.pen_digit_images(
            pen_parts["train"], seed=settings.seed, renders=PEN_RENDERS, hand=strokes.PEN_TRAINING_HAND, cache=True
        )
        x_pen_val, y_pen_val = strokes.pen_digit_images(pen_parts["validation"], seed=settings.seed, cache=True)
        x_all, y_all = np.concatenate([x_all, x_pen, x_pen_val]), np.concatenate([y_all, y_pen, y_pen_val])
        x_train, y_train = np.concatenate([x_train, x_pen]), np.concatenate([y_train, y_pen])
    if settings.class_digits:
        (x_class, y_class), (x_held, y_held) = class_set
        if not len(x_class):
            raise SettingsError(
                f"The class {settings.class_digits!r} has no digits to train on yet: "
                "keep some on Draw or Compare first."
            )
        # A class's 150 digits among 54,000 would be 0.3 % of an epoch and change nothing:
        # repeated, they make about a quarter of it, and MNIST's three quarters keep it from forgetting.
        repeats = max(1, round(len(x_train) / (3 * len(x_class))))
        x_all, y_all = np.concatenate([x_all, x_class]), np.concatenate([y_all, y_class])
        x_train = np.concatenate([x_train, np.repeat(x_class, repeats, axis=0)])
        y_train = np.concatenate([y_train, np.repeat(y_class, repeats)])
    data_sha256 = _training_data_sha256(x_all, y_all)
    x_train, x_val, x_test = data.to_float(x_train), data.to_float(x_val), data.to_float(x_test)
    y_train, y_val = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_val, 10)

    keras.utils.set_random_seed(settings.seed)
    spec = architectures.get(settings.arch)
    if settings.fine_tune:
        model = _load_bytes(shipped)
    else:
        model = spec.build(
            width=settings.width or None, hidden_layers=settings.hidden_layers or None, dropout=settings.dropout
        )
    steps = -(-len(x_train) // settings.batch_size)
    model.compile(
        optimizer=_optimizer(settings, steps * settings.epochs), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    reporter = _Reporter(model, progress, stop, steps)
    callbacks: list[keras.callbacks.Callback] = [reporter.callback()]
    class_record = None
    if settings.class_digits:
        x_held = data.to_float(x_held)
        before = None
        if shipped is not None and len(x_held):  # the fine-tuned model is the shipped one until it is fit
            before = _accuracy(model if settings.fine_tune else _load_bytes(shipped), x_held, y_held)
        class_record = {
            "class": settings.class_digits,
            "train": int(len(x_class)),
            "held_out": int(len(x_held)),
            "repeats": repeats,
            "held_out_accuracy_before": before,
        }
        if len(x_held):  # first: the reporter and the history see its metric
            callbacks.insert(0, _held_out_accuracy(model, x_held, y_held))
    pen_record = None
    if pen_parts is not None:
        x_pen_val = data.to_float(x_pen_val)
        pen_record = {
            "split": data.PEN_SPLIT_RULE,
            "renders": PEN_RENDERS,
            "digits_sha256": data.pen_digits_sha256([d for part in pen_parts.values() for d in part]),
            **{f"{part}_writers": len({d.writer for d in digits}) for part, digits in pen_parts.items()},
            **{f"{part}_digits": len(digits) for part, digits in pen_parts.items()},
            "test_writers_held_out": sorted({d.writer for d in pen_parts["test"]}),
            "validation_accuracy_before": _accuracy(model, x_pen_val, y_pen_val) if settings.fine_tune else None,
        }
        callbacks.insert(0, _held_out_accuracy(model, x_pen_val, y_pen_val, "pen_val_accuracy"))
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(tensorboard_dir), update_freq="epoch"))
    progress.on_start(settings, steps, len(x_train))
    if settings.augment:
        train_data = augment.augmented_dataset(x_train, y_train, settings.batch_size, settings.seed)
        fit_args = dict(x=train_data, shuffle=False)  # the dataset shuffles itself
    else:
        fit_args = dict(x=x_train, y=y_train, batch_size=settings.batch_size, shuffle=True)
    fitted = model.fit(
        **fit_args, epochs=settings.epochs, validation_data=(x_val, y_val), callbacks=callbacks, verbose=0
    )

    test_accuracy = _accuracy(model, x_test, y_test)
    if pen_record is not None:
        pen_record["validation_accuracy"] = _accuracy(model, x_pen_val, y_pen_val)
    if class_record is not None:
        class_record["held_out_accuracy"] = _accuracy(model, x_held, y_held) if len(x_held) else None
    return TrainingResult(
        model=model,
        settings=settings,
        history={k: [float(v) for v in values] for k, values in fitted.history.items()},
        batch_loss=[[step, loss] for step, loss, _ in zip(*reporter.batch_loss.points())],
        seconds_per_epoch=[round(s, 3) for s in reporter.seconds],
        test_accuracy=test_accuracy,
        stopped_early=reporter.stopped,
        data_sha256=data_sha256,
        train_digits=len(x_train),
        val_digits=len(x_val),
        class_record=class_record,
        pen_record=pen_record,
    )


def _held_out_accuracy(
    model: keras.Model, x: np.ndarray, y: np.ndarray, key: str = "class_accuracy"
) -> keras.callbacks.Callback:
    """Adds ``key`` (accuracy on held-out digits: the class's, the validation writers') to each epoch's metrics."""
    import keras

    def on_epoch_end(epoch, logs=None):
        if logs is not None:
            logs[key] = _accuracy(model, x, y)

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    probabilities = model.predict(x, batch_size=1000, verbose=0)
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def _load_bytes(content: bytes) -> keras.Model:
    """A ``.keras`` file's bytes → the model (load_model wants a path ending in .keras)."""
    import keras

    with tempfile.TemporaryDirectory(prefix=f"{config.SCRATCH_PREFIX}start_") as folder:
        path = os.path.join(folder, "start.keras")
        with open(path, "wb") as handle:
            handle.write(content)
        return keras.models.load_model(path, compile=False, safe_mode=True)


def _training_data_sha256(x: np.ndarray, y: np.ndarray) -> str:
    """Identifies the digits a model learnt from, whatever file they came from."""
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()
