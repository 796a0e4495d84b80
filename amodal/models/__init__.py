"""Networks and what they eat: DINOv2 and the DPT head, Depth Anything V2 and Amodal-DAV2, (Amodal-)DepthFM
with its autoencoders and the LDM checkpoint conversion, flow matching, pix2gestalt (with CLIP's image tower
and DDIM sampling), the paper's preprocessing and the input checks, and the official checkpoint layouts
(:mod:`~amodal.models.checkpoints`)."""
