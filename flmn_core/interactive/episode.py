"""An episode taught one step at a time, as the app's pages run it (no Streamlit here).

A person shows an image, every model predicts its label, then the person gives the true label. That label
reaches the models one step later, together with the next image, exactly as in training
(`flmn_core.data.episodes.offset_labels`): step t sees (x_t, y_{t-1}), with y_{-1} = zeros.

    episode = InteractiveEpisode(classes=5)
    steps = episode.predict(models, image)   # {name: Step}: each model's view of x_t, nothing kept yet
    episode.commit(label)                    # label in 0..C-1; the predictions above become step t
    episode.undo(); episode.delete(t); episode.reset(); episode.set_classes(3)
    episode.save("episode.npz"); InteractiveEpisode.load("episode.npz")

`models` is a dict {name: model}, e.g. {"flmn-exp1": FLMN, "mann-exp1": MANN}. Labels are 0..C-1 here, as
everywhere in flmn_core; the pages show them as 1..C. An episode uses C labels (the teacher's choice); a
model tells L >= C apart (its config's classes) and runs it with its own one-hot size, as in training,
where each episode's classes get C of the L labels. Its probabilities cover all L labels, so it may
predict a label the episode does not use: that counts as wrong, as in evaluation. Shapes: T steps so
far, C labels in use, L a model's labels, 20 x 20 images.
"""

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from flmn_core.data.episodes import instance_numbers, sample_episodes

# The episode file's format and limits live in flmn_core.interactive.episode_file; the pages import EpisodeError and
# MAX_NAME_LENGTH from here, with the episode.
from flmn_core.interactive.episode_file import (  # noqa: F401
    MAX_CLASSES,
    MAX_NAME_LENGTH,
    MAX_STEPS,
    EpisodeError,
    EpisodeFile,
    check_class_names,
    check_label,
    read_episode_file,
    write_episode_file,
)
from flmn_core.model.configs import IMAGE_SIZE
from flmn_core.training.metrics import INSTANCES, instance_hits

FULL = (f"the episode has reached {MAX_STEPS} steps, the most one session keeps (each step holds both models' "
        "memories on the server): save it and start a new one, or undo or delete steps")


@dataclass
class Step:
    """One model at one step: its prediction for x_t and what its memory looks like afterwards.

    probabilities: [L], softmax of the logits over the model's L labels (L >= the episode's C).  state: the model's state after the step (batch of 1),
    from which the next step continues.  trace: what model.step computed on the way (FLMNTrace or MANNTrace,
    batch of 1); state and trace together are what the pages draw.
    """

    probabilities: torch.Tensor
    state: tuple
    trace: tuple

    @property
    def predicted(self):
        """The predicted label, 0..L-1 (C or more: a label the episode does not use)."""
        return int(self.probabilities.argmax())


class InteractiveEpisode:
    """The images and labels of one episode so far, and each model's steps through it.

    classes: C, the labels the episode uses (0..C-1).  images: list of [20, 20] float tensors (ink 1),
    labels: list of ints in 0..C-1, one per committed step.  runs: {model name: [Step per committed step]}.
    pending: (image, {name: Step}) predicted, not committed.  Only models' references are kept (never
    copies): the models are shared and are never changed here.  recorded: {model name: float array
    [T, C]}, the probabilities of the labels in use stored in a loaded file.
    """

    def __init__(self, classes, class_names=None):
        self.classes = check_classes(classes)
        self.class_names = check_class_names(class_names, classes)
        self.images, self.labels = [], []
        self.runs, self.pending, self.recorded = {}, None, {}
        self.models = {}  # the model objects the runs came from: a replaced checkpoint is replayed

    def __len__(self):
        return len(self.labels)

    @property
    def full(self):
        """Whether the episode holds MAX_STEPS steps, the most a session keeps: no step can be added."""
        return len(self) >= MAX_STEPS

    # ------------------------------------------------------------------------------------------------
    # Teaching

    def sync(self, models):
        """Follow a new set of models: replay the committed steps for each model not run yet, forget the
        runs of models no longer given. A pending prediction is dropped when the models changed. Every
        model must tell at least the episode's C labels apart (EpisodeError otherwise)."""
        check_models(models, self.classes)
        same = {name for name, model in models.items() if self.models.get(name) is model and name in self.runs}
        if same != set(self.runs) or same != set(models):
            self.pending = None
        self.runs = {name: self.runs[name] if name in same else self.replay(model) for name, model in models.items()}
        self.models = dict(models)

    @torch.no_grad()
    def replay(self, model, start=0, state=None):
        """Run one model through the committed steps from step `start` on, continuing from `state` (its
        state after step start - 1; None: an empty memory) -> [Step per step from start]."""
        steps = []
        for t in range(start, len(self)):
            step = run_step(model, self.images[t], self.prev_label(t, model_labels(model)), state)
            steps.append(step)
            state = step.state
        return steps

    @torch.no_grad()
    def predict(self, models, image):
        """Each model's prediction for the next image, continuing from its state after the last committed
        step, with the last label given as y_{t-1}. Kept as pending until `commit`.

        image: [20, 20] float tensor, ink 1 (flmn_core.interactive.uploads.prepare) -> {name: Step}.
        """
        self.sync(models)
        image = check_image(image)
        t = len(self)
        steps = {name: run_step(model, image, self.prev_label(t, model_labels(model)),
                                self.runs[name][-1].state if t else None)
                 for name, model in models.items()}
        self.pending = (image, steps)
        return steps

    def commit(self, label):
        """Give the true label (0..C-1) of the image last predicted: it becomes step t, and the label is
        fed to the models with the next image."""
        label = check_label(label, self.classes)
        if self.pending is None:
            raise EpisodeError("there is no prediction to label: show the models an image first")
        if self.full:
            raise EpisodeError(FULL)
        image, steps = self.pending
        self.images.append(image)
        self.labels.append(label)
        for name, step in steps.items():
            self.runs[name].append(step)
        self.pending = None
        self.recorded = {}  # a loaded file's predictions no longer describe this episode

    def undo(self):
        """Forget the last committed step (its image, label and every model's step)."""
        if not self.labels:
            raise EpisodeError("there is nothing to undo: the episode is empty")
        self.images.pop()
        self.labels.pop()
        for steps in self.runs.values():
            steps.pop()
        self.pending = None
        self.recorded = {}

    def delete(self, t):
        """Forget committed step t (0-based: its image, label and every model's step) and replay the later
        steps without it, so the models see the episode as if that drawing had never been shown. The steps
        before t are kept as they are: nothing they saw has changed."""
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < len(self):
            raise EpisodeError(f"cannot delete step {t!r}: the episode's steps are 0..{len(self) - 1}")
        del self.images[t], self.labels[t]
        for name, steps in self.runs.items():
            kept = steps[:t]
            self.runs[name] = kept + self.replay(self.models[name], t, kept[-1].state if kept else None)
        self.pending = None
        self.recorded = {}

    def reset(self):
        """Start again with empty memories; the class names stay."""
        self.images, self.labels = [], []
        self.runs = {name: [] for name in self.runs}
        self.pending, self.recorded = None, {}

    def set_classes(self, classes):
        """Use C = classes labels from now on. The models never see C (only the labels given), so the steps
        so far stand; but a label already given must stay in use, and the models must tell C apart (sync)."""
        classes = check_classes(classes)
        if self.labels and max(self.labels) >= classes:
            raise EpisodeError(f"label {max(self.labels) + 1} is given in this episode, so it needs at least "
                               f"{max(self.labels) + 1} labels; undo or delete those steps first")
        self.class_names = (self.class_names + [""] * classes)[:classes]
        self.classes = classes
        self.recorded = {}  # a loaded file's probabilities cover its own labels

    def prev_label(self, t, labels=None):
        """The input y_{t-1} of step t: [1, L], the one-hot label given at step t - 1, zeros at t = 0; L is
        the size of the model's label space (default: the episode's C)."""
        labels = self.classes if labels is None else labels
        if t == 0:
            return torch.zeros(1, labels)
        return F.one_hot(torch.tensor([self.labels[t - 1]]), labels).float()

    # ------------------------------------------------------------------------------------------------
    # What the pages show

    def instances(self):
        """[T] long: how many times each step's label had been given up to that step, that one included."""
        if not self.labels:
            return torch.zeros(0, dtype=torch.long)
        return instance_numbers(torch.tensor([self.labels]), self.classes)[0]

    def probabilities(self, name):
        """One model's probabilities at every committed step: [T, L]."""
        if not self.labels:
            return torch.zeros(0, model_labels(self.models[name]) if name in self.models else self.classes)
        return torch.stack([step.probabilities for step in self.runs[name]])

    def instance_accuracy(self, name, max_instance=INSTANCES):
        """One model's running accuracy by instance: (correct [I], total [I]) as int lists, where column k
        counts the steps showing a label for the (k+1)-th time. The first instance is a guess; the second
        is one-shot recognition."""
        if not self.labels:
            return [0] * max_instance, [0] * max_instance
        hits, total = instance_hits(self.probabilities(name)[None], torch.tensor([self.labels]),
                                    self.instances()[None], max_instance)
        return [int(v) for v in hits[0]], [int(v) for v in total[0]]

    def changed_predictions(self):
        """For each model run now that a loaded file also recorded: how many steps it now predicts a
        different label than when the file was saved (a retrained checkpoint, or a different one)."""
        return {name: int((self.in_use(self.probabilities(name)).argmax(1).numpy() != recorded.argmax(1)).sum())
                for name, recorded in self.recorded.items() if name in self.runs and len(recorded) == len(self)}

    def in_use(self, probabilities):
        """The probabilities [..., L] of the episode's C labels -> [..., C] (summing to 1 only when L = C)."""
        return probabilities[..., : self.classes]

    def label_texts(self):
        """The texts of the labels in use, 0..C-1 (label_text)."""
        return [self.label_text(c) for c in range(self.classes)]

    def label_text(self, label):
        """A label as the person sees it: '3', '3 (Alpha)', or '12 (not in use)' for a label a model may
        predict but the episode does not use."""
        if label >= self.classes:
            return f"{label + 1} (not in use)"
        name = self.class_names[label]
        return f"{label + 1} ({name})" if name else f"{label + 1}"

    # ------------------------------------------------------------------------------------------------
    # Files

    def save(self, target):
        """Write the episode (images, labels, class names, each model's probabilities of the labels in use)
        as an episode file (flmn_core.interactive.episode_file) to a path (atomically) or a binary file
        object. Plain arrays only."""
        write_episode_file(target, EpisodeFile(
            self.classes, self.class_names,
            torch.stack(self.images).numpy() if self.images else torch.zeros(0, IMAGE_SIZE, IMAGE_SIZE).numpy(),
            self.labels, {name: self.in_use(self.probabilities(name)).numpy() for name in self.runs}))

    def to_bytes(self):
        """The episode file's content, for a download button."""
        buffer = io.BytesIO()
        self.save(buffer)
        return buffer.getvalue()

    @classmethod
    def load(cls, source, labels=None):
        """Read an episode file (a path, bytes or a binary file object) -> InteractiveEpisode with its
        images and labels; `sync(models)` then replays them. Raises EpisodeError for anything that is not
        an episode file of this format, or, when `labels` is given (the fewest labels a chosen model tells
        apart), for an episode that uses more labels than that, which those models could not run."""
        content = read_episode_file(source)
        if labels is not None and content.classes > labels:
            raise EpisodeError(f"its episode uses {content.classes} labels and the checkpoints chosen tell at most "
                               f"{labels} apart, so they could not run it; choose checkpoints with at least "
                               f"{content.classes} labels to load it")
        episode = cls(content.classes, content.class_names)
        episode.images = [torch.from_numpy(image) for image in content.images]
        episode.labels = [int(label) for label in content.labels]
        episode.recorded = content.recorded
        return episode

    @classmethod
    def from_sequence(cls, images, labels, classes, class_names=None):
        """An episode whose steps are given: images [T, 20, 20], labels [T] in 0..C-1."""
        episode = cls(classes, class_names)
        for image, label in zip(images, labels):
            episode.images.append(check_image(image))
            episode.labels.append(check_label(int(label), classes))
        return episode


# ----------------------------------------------------------------------------------------------------
# Plain helpers


@torch.no_grad()
def run_step(model, image, prev_label, state):
    """One model step on one image. image: [20, 20], prev_label: [1, C] -> Step."""
    logits, state, trace = model.step(image[None], prev_label, state)
    return Step(torch.softmax(logits[0], dim=0), state, trace)


def episode_from_pool(pool, classes, samples, seed, characters=None):
    """A fresh episode sampled from a pool of images [characters, drawings, 20, 20] (Omniglot test
    characters, miniMNIST or generated glyphs) as in evaluation: `classes` classes x `samples` drawings,
    shuffled, labels assigned at random -> InteractiveEpisode (models are added with sync)."""
    generator = torch.Generator().manual_seed(int(seed))
    try:
        batch = sample_episodes(pool, 1, generator, classes, samples, characters=characters)
    except ValueError as error:
        raise EpisodeError(str(error)) from None
    return InteractiveEpisode.from_sequence(batch.images[0], batch.labels[0], classes)


def model_labels(model):
    """L, the labels a model tells apart (the size of its one-hot label input and of its output)."""
    return model.config.classes


def label_space(models, default):
    """The most labels an episode may use with these models: the fewest any of them tells apart (default
    when there is none)."""
    return min((model_labels(model) for model in models.values()), default=default)


def check_classes(classes):
    """C, the labels an episode uses: a whole number from 2 to MAX_CLASSES -> classes; EpisodeError otherwise."""
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or not 2 <= classes <= MAX_CLASSES:
        raise EpisodeError(f"an episode uses 2 to {MAX_CLASSES} labels, not {classes!r}")
    return int(classes)


def check_models(models, classes):
    """Every model must tell at least `classes` labels apart; raise EpisodeError naming the first that does not."""
    for name, model in models.items():
        if model_labels(model) < classes:
            raise EpisodeError(f"{name} tells {model_labels(model)} labels apart and this episode uses {classes}; "
                               f"choose checkpoints with at least {classes} labels, or start a new episode with "
                               f"at most {model_labels(model)}")


def check_image(image):
    """image: [20, 20] tensor or array in [0, 1] -> float32 tensor; raise EpisodeError otherwise."""
    image = torch.as_tensor(image, dtype=torch.float32)
    if tuple(image.shape) != (IMAGE_SIZE, IMAGE_SIZE):
        raise EpisodeError(f"expected a {IMAGE_SIZE}x{IMAGE_SIZE} image, got shape {tuple(image.shape)}")
    if not torch.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise EpisodeError("image values must be finite and within 0..1 (ink 1)")
    return image
