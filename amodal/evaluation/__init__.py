"""The paper's evaluation protocol run over many samples (§5.1): predictors that wrap each kind of model
(:mod:`~amodal.evaluation.predictors`), scoring on the hidden region (:mod:`~amodal.evaluation.scoring`),
bootstrap intervals (:mod:`~amodal.evaluation.intervals`), files and tables beside the paper's Table 1
(:mod:`~amodal.evaluation.tables`), and what a wrong amodal mask costs (:mod:`~amodal.evaluation.mask_quality`)."""
