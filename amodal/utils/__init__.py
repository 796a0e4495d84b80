"""The bottom layer, free of the method: atomic writes (:mod:`~amodal.utils.atomic`), reading
images (:mod:`~amodal.utils.images`), where the checkout's folders are (:mod:`~amodal.utils.paths`),
seeds and devices (:mod:`~amodal.utils.seeding`), reading PyTorch files without running code from
them (:mod:`~amodal.utils.torch_files`), weights by Hugging Face Hub id (:mod:`~amodal.utils.hub`)."""
