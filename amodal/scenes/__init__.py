"""Synthetic worlds where hidden depth is known exactly: ray-cast shapes (:mod:`~amodal.scenes.raycast`),
random textured scenes rendered with per-object depth and masks (:mod:`~amodal.scenes.synth`), and the
two-way toy of notebook 04 whose hidden part bends either way (:mod:`~amodal.scenes.toy_occlusion`)."""
