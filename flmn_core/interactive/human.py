"""Human mode: a person plays the models' task on one episode and is scored as the models are.

The protocol is the models' (and that of Santoro et al. 2016's human players, `paper.HUMAN`): at step t
the person sees the drawing x_t and the true label of the previous drawing, y_{t-1}, and answers x_t's label
before being told it; a class's 1st drawing can only be guessed.

    game = HumanPlay(images, labels, classes=5)      # an episode, e.g. interactive.episode_from_pool(...)
    game.current()                                   # x_t, what to answer now
    game.feedback()                                  # (x_{t-1}, y_{t-1}, the answer given), None at t = 0
    game.answer(2)                                   # labels are 0..C-1, as everywhere in flmn_core
    game.instance_accuracy()                         # (correct, total) per instance, as the models' tables

Shapes: T steps, C classes, 20 x 20 images.
"""

import torch

from flmn_core.data.episodes import instance_numbers
from flmn_core.interactive.episode import EpisodeError, check_label
from flmn_core.training.metrics import INSTANCES, instance_hits


class HumanPlay:
    """A person's answers to one episode, in order. images: [T, 20, 20]; labels: [T] in 0..C-1 (the true
    labels); answers: the labels answered so far, one per step from the first."""

    def __init__(self, images, labels, classes, answers=()):
        self.images = torch.as_tensor(images, dtype=torch.float32) if not isinstance(images, (list, tuple)) \
            else torch.stack([torch.as_tensor(image, dtype=torch.float32) for image in images])
        self.labels = [check_label(int(label), classes) for label in labels]
        if len(self.images) != len(self.labels) or not self.labels:
            raise EpisodeError(f"an episode needs as many images as labels (at least one), got "
                               f"{len(self.images)} and {len(self.labels)}")
        self.classes = classes
        self.answers = []
        for label in answers:
            self.answer(label)

    def __len__(self):
        return len(self.labels)

    @property
    def step(self):
        """The index t of the drawing to answer now (== T when the episode is over)."""
        return len(self.answers)

    @property
    def done(self):
        return self.step == len(self)

    def current(self):
        """The drawing to answer now: [20, 20]."""
        if self.done:
            raise EpisodeError("the episode is over: every drawing has been answered")
        return self.images[self.step]

    def feedback(self):
        """What the person is told with the drawing to answer, one step late as the models are:
        (x_{t-1} [20, 20], its true label y_{t-1}, the answer given to it), or None before the first answer."""
        if not self.answers:
            return None
        t = self.step - 1
        return self.images[t], self.labels[t], self.answers[t]

    def answer(self, label):
        """Answer the current drawing's label (0..C-1) -> whether it was right."""
        if self.done:
            raise EpisodeError("the episode is over: every drawing has been answered")
        label = check_label(label, self.classes)
        self.answers.append(label)
        return label == self.labels[len(self.answers) - 1]

    def instances(self):
        """[T] long: the instance of each step's class (1 for its first drawing in the episode)."""
        return instance_numbers(torch.tensor([self.labels]), self.classes)[0]

    def instance_accuracy(self, max_instance=INSTANCES):
        """Running accuracy by instance over the steps answered: (correct [I], total [I]) int lists, column k
        counting the steps that show a class for the (k+1)-th time, as InteractiveEpisode.instance_accuracy."""
        if not self.answers:
            return [0] * max_instance, [0] * max_instance
        answered = len(self.answers)
        one_hot = torch.nn.functional.one_hot(torch.tensor([self.answers]), self.classes).float()
        hits, total = instance_hits(one_hot, torch.tensor([self.labels[:answered]]),
                                    self.instances()[None, :answered], max_instance)
        return [int(v) for v in hits[0]], [int(v) for v in total[0]]
