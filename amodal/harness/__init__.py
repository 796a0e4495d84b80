"""Running the notebooks: profiles and setup (:mod:`~amodal.harness.notebook`), every notebook through
papermill (:mod:`~amodal.harness.run_notebooks`, ``make reproduce``) and the HTML report
(:mod:`~amodal.harness.report`)."""
