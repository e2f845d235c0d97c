"""The zoo's architectures: the seven tutorial models and one beyond it.

Every model honours the model contract: input (N, 28, 28) float32 in [0, 1],
white digit on black; output (N, 10) softmax. Flattening or adding the
channel axis happens inside the model, so every caller hands every model the
same batch. Layers get explicit names: Streamlit's end-of-run Keras reset can
otherwise make two layers both auto-named ``dense`` (see docs/facts.md).
Keras is imported by the builders only: the registry serves the web server,
which never imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import keras

INPUT_SHAPE = (28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class Architecture:
    """One zoo entry: how to build it and the settings it is trained with."""

    name: str
    family: Literal["mlp", "cnn", "cnn_robust"]  # which builder: how the layers are laid out
    summary: str  # one line for pickers and tables
    epochs: int
    tutorial_accuracy: float | None  # the 2017 tutorial's validation accuracy
    hidden_layers: int = 0  # MLPs only
    width: int = 0  # MLPs only
    dropout: float = 0.0
    augment: bool = False  # train on drawing-like distortions (model_zoo.augment)
    usps: bool = False  # also train on USPS's 7,291 training digits: other writers, other pens
    strokes: bool = False  # also train on the training digits redrawn with the canvas's round pen
    # Then this many epochs more from its own weights, at a tenth of the learning rate, with the
    # digits redrawn with the canvas's pen and UNIPEN's train writers' real pen strokes added
    # (scripts.train_zoo.pen_finish_settings). Measured (docs/facts.md): from scratch on the
    # redrawn digits it reads pen strokes as well but loses USPS; finishing keeps both.
    pen_finish_epochs: int = 0
    # In that finish, USPS's training digits (a usps model's) are its train four fifths only
    # (data.usps_validation_split: the fifth held out is what the finish's recipe is chosen on),
    # each this many times, and their pen versions with them (scripts.train_zoo.finish_usps).
    pen_finish_usps_repeats: int = 1
    batch_size: int = 128
    learning_rate: float = 1e-3
    lr_decay: bool = False  # cosine decay of the learning rate to 0 over the run
    lesson: str = field(default="", compare=False)

    @property
    def in_tutorial(self) -> bool:
        return self.tutorial_accuracy is not None

    def build(
        self,
        *,
        width: int | None = None,
        hidden_layers: int | None = None,
        dropout: float | None = None,
        name: str | None = None,
    ) -> keras.Sequential:
        """A fresh, uncompiled model; the overrides serve the Train page."""
        dropout = self.dropout if dropout is None else dropout
        name = name or self.name
        if self.family == "mlp":
            return build_mlp(name, hidden_layers or self.hidden_layers, width or self.width, dropout)
        if self.family == "cnn":
            return build_tutorial_cnn(name, dropout)
        return build_robust_cnn(name, dropout)


# One table for the zoo. All: Adam, categorical cross-entropy, batch 128.
ZOO: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture(
            "mlp_1x50",
            "mlp",
            "Dense 50 → 10",
            5,
            0.9470,  # 39,760 params
            hidden_layers=1,
            width=50,
            lesson="The baseline: one small hidden layer already gets ~95 %.",
        ),
        Architecture(
            "mlp_1x500",
            "mlp",
            "Dense 500 → 10",
            5,
            0.9713,  # 397,510 params
            hidden_layers=1,
            width=500,
            lesson="Width helps: ten times the units, fewer mistakes.",
        ),
        Architecture(
            "mlp_5x50",
            "mlp",
            "5 × Dense 50 → 10",
            5,
            0.9541,  # 49,960 params
            hidden_layers=5,
            width=50,
            lesson="Depth alone buys little and starts to overfit.",
        ),
        Architecture(
            "mlp_5x50_dropout",
            "mlp",
            "5 × (Dense 50, Dropout 0.2) → 10",
            5,
            0.9459,
            hidden_layers=5,
            width=50,
            dropout=0.2,  # 49,960 params
            lesson="Dropout regularises, but in 5 epochs it has not caught up.",
        ),
        Architecture(
            "mlp_5x50_dropout_50ep",
            "mlp",
            "5 × (Dense 50, Dropout 0.2) → 10, 50 epochs",
            50,
            0.9631,
            hidden_layers=5,
            width=50,
            dropout=0.2,  # 49,960 params
            lesson="Dropout needs more epochs: the same net, ten times longer.",
        ),
        Architecture(
            "mlp_5x500_dropout",
            "mlp",
            "5 × (Dense 500, Dropout 0.2) → 10",
            25,
            0.9774,
            hidden_layers=5,
            width=500,
            dropout=0.2,  # 1,399,510 params
            lesson="Wide, deep and regularised: the best MLP.",
        ),
        Architecture(
            "cnn",
            "cnn",
            "Conv 25@5×5, pool → Conv 25@5×5, pool → Conv 25@4×4 → Dense 50 → 10",
            5,
            0.9797,  # 28,135 params
            lesson="Convolutions see strokes, not pixels: best with the fewest weights.",
        ),
        # Beyond the tutorial: trained on shifted, rotated, scaled, sheared and
        # thinner/thicker digits so that it reads real drawings.
        Architecture(
            "cnn_robust",
            "cnn_robust",
            "2 × (2 × Conv 3×3 + BatchNorm, pool) → Dense 128 → 10, drawing augmentation",
            12,
            None,
            dropout=0.3,
            augment=True,
            lr_decay=True,
            usps=True,
            pen_finish_epochs=3,
            pen_finish_usps_repeats=3,  # chosen on the USPS validation fifth (scripts.train_zoo)
            lesson="Beyond the tutorial: augmentation, a second set of writers (USPS), digits "
            "redrawn with the canvas's pen and real people's pen strokes (UNIPEN) teach it "
            "how people really draw.",
        ),
    ]
}

TUTORIAL_MODELS = [name for name, arch in ZOO.items() if arch.in_tutorial]


class UnknownModelError(KeyError, ValueError):
    """A zoo name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would print the repr
        return str(self.args[0])


def get(name: str) -> Architecture:
    try:
        return ZOO[name]
    except KeyError:
        raise UnknownModelError(f"Unknown architecture {name!r}. Expected one of: {', '.join(ZOO)}.") from None


def build_mlp(name: str, hidden_layers: int, width: int, dropout: float) -> keras.Sequential:
    import keras
    from keras import layers

    model = keras.Sequential(name=name)
    model.add(keras.Input(INPUT_SHAPE, name="pixels"))  # (N, 28, 28)
    model.add(layers.Flatten(name="flatten"))  # (N, 784)
    for i in range(1, hidden_layers + 1):
        model.add(layers.Dense(width, activation="relu", name=f"hidden_{i}"))
        if dropout:
            model.add(layers.Dropout(dropout, name=f"dropout_{i}"))
    model.add(layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"))
    return model


def build_tutorial_cnn(name: str, dropout: float = 0.0) -> keras.Sequential:
    import keras
    from keras import layers

    model = keras.Sequential(name=name)
    model.add(keras.Input(INPUT_SHAPE, name="pixels"))
    model.add(layers.Reshape((28, 28, 1), name="add_channel"))
    model.add(layers.Conv2D(25, 5, activation="relu", name="conv_1"))  # (N, 24, 24, 25)
    model.add(layers.MaxPooling2D(2, name="pool_1"))  # (N, 12, 12, 25)
    model.add(layers.Conv2D(25, 5, activation="relu", name="conv_2"))  # (N, 8, 8, 25)
    model.add(layers.MaxPooling2D(2, name="pool_2"))  # (N, 4, 4, 25)
    model.add(layers.Conv2D(25, 4, activation="relu", name="conv_3"))  # (N, 1, 1, 25)
    model.add(layers.Flatten(name="flatten"))
    model.add(layers.Dense(50, activation="relu", name="hidden"))
    if dropout:
        model.add(layers.Dropout(dropout, name="dropout"))
    model.add(layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"))
    return model


def build_robust_cnn(name: str, dropout: float = 0.3) -> keras.Sequential:
    import keras
    from keras import layers

    model = keras.Sequential(name=name)
    model.add(keras.Input(INPUT_SHAPE, name="pixels"))
    model.add(layers.Reshape((28, 28, 1), name="add_channel"))
    for block, filters in enumerate((32, 64), start=1):  # 28 → 14 → 7
        for i in (1, 2):
            model.add(layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{block}_{i}"))
            model.add(layers.BatchNormalization(name=f"bn_{block}_{i}"))
            model.add(layers.Activation("relu", name=f"relu_{block}_{i}"))
        model.add(layers.MaxPooling2D(2, name=f"pool_{block}"))
    model.add(layers.Flatten(name="flatten"))  # (N, 3136)
    model.add(layers.Dense(128, use_bias=False, name="hidden"))
    model.add(layers.BatchNormalization(name="bn_hidden"))
    model.add(layers.Activation("relu", name="relu_hidden"))
    if dropout:
        model.add(layers.Dropout(dropout, name="dropout"))
    model.add(layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"))
    return model
