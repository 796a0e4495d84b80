"""Network definitions: Depth Anything V2, Amodal-DAV2 and (Amodal-)DepthFM."""
