"""Training both models (paper §4): named recipes (:mod:`~amodal.training.recipes`), the network, its
objective and Adam (:mod:`~amodal.training.setup`, :mod:`~amodal.training.objectives`,
:mod:`~amodal.training.schedule`), the loop cut into named steps with exact resume
(:mod:`~amodal.training.loop`, :mod:`~amodal.training.order`, :mod:`~amodal.training.state`,
:mod:`~amodal.training.logs`), validation, curves, and the paper's ablations in small
(:mod:`~amodal.training.ablations`)."""
