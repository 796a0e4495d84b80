"""Reading and smoothing a run's curves."""
import numpy as np
import pytest

from amodal.training.curves import plot_run, read_run, smooth


def test_smooth_by_hand():
    np.testing.assert_allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    with pytest.raises(ValueError):
        smooth(np.ones(3), 0)


def test_read_and_plot(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    (tmp_path / "log.csv").write_text("step,loss,lr\n1,0.5,0.1\n2,0.25,0.1\n")
    (tmp_path / "validation.csv").write_text("step,hidden_rmse_x100\n2,1.5\n")
    run = read_run(tmp_path)
    assert run["loss"].tolist() == [0.5, 0.25] and run["val_hidden_rmse_x100"].tolist() == [1.5]
    assert plot_run(tmp_path, window=2) is not None
    with pytest.raises(FileNotFoundError, match="log.csv"):
        read_run(tmp_path / "none")
