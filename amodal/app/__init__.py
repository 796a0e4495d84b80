"""What a person looks at: the explorer's logic (:mod:`~amodal.app.explorer`), your own photo from clicks
to PLY (:mod:`~amodal.app.photo`, :mod:`~amodal.app.segment_classical`), the figures
(:mod:`~amodal.app.figures`), the ipywidgets that wire them (:mod:`~amodal.app.widgets`), and the cap on
the kernels of the server that shows them (:mod:`~amodal.app.serving`)."""
