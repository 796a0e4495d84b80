"""Network definitions: Depth Anything V2, Amodal-DAV2 and (Amodal-)DepthFM, with the
LDM checkpoint conversion and the autoencoders DepthFM runs in."""
