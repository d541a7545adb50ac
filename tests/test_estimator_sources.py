"""GaussianMixture on out-of-core sources and online: partial_fit, streamed predictions."""
import numpy as np
import pytest

from fastem import GaussianMixture
from fastem._sources.chunked import ChunkedSource

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 2.0], [0.0, 7.0, -3.0]])
    labels = rng.integers(0, 3, n)
    return centres[labels] + rng.normal(scale=[1.0, 0.5, 1.5], size=(n, 3))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_one_pass_reaches_batch_em(covariance_type):
    X = _blobs()
    batch = GaussianMixture(3, covariance_type=covariance_type, random_state=0, backend="numpy").fit(X)
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0, backend="numpy")
    for minibatch in np.array_split(X, 60):  # shuffled stream, seen once
        online.partial_fit(minibatch)
    assert online.n_iter_ == 60 and len(online.lower_bounds_) == 60
    assert np.isclose(online.weights_.sum(), 1.0)
    batch_score, online_score = batch.score(X), online.score(X)
    assert online_score >= batch_score - 0.01 * abs(batch_score)


def test_partial_fit_continues_a_fit_and_checks_features():
    X = _blobs()
    gm = GaussianMixture(3, random_state=0, backend="numpy").fit(X)
    before = gm.score(X)
    gm.partial_fit(X[:500])
    assert gm.n_iter_ == 1 and np.isfinite(gm.lower_bound_)
    assert gm.score(X) > before - 0.05 * abs(before)
    with pytest.raises(ValueError, match="features"):
        gm.partial_fit(X[:10, :2])


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_predictions_stream_over_chunked_sources(covariance_type):
    X = _blobs(1000)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0, backend="numpy").fit(X)

    def chunks():  # a callable: re-invoked on every pass, ragged last chunk
        return (X[i:i + 300] for i in range(0, len(X), 300))

    source = ChunkedSource(chunks)
    np.testing.assert_array_equal(gm.predict(source), gm.predict(X))
    np.testing.assert_array_equal(np.concatenate(list(gm.iter_predict(source))), gm.predict(X))
    np.testing.assert_allclose(gm.predict_proba(source), gm.predict_proba(X), rtol=1e-12)
    np.testing.assert_allclose(gm.score_samples(source), gm.score_samples(X), rtol=1e-12)
    assert np.isclose(gm.score(source), gm.score(X), rtol=1e-12)
    with pytest.raises(ValueError, match="features"):
        gm.predict(ChunkedSource(lambda: iter([X[:, :2]])))


def test_callback_sees_every_iteration_and_tqdm_bar_runs(capsys):
    X = _blobs(600)
    seen = []
    gm = GaussianMixture(3, random_state=0, backend="numpy", n_init=2, callback=seen.append).fit(X)
    assert [info.n_iter for info in seen if info.init == 1][-1] == len([i for i in seen if i.init == 1])
    assert {info.init for info in seen} == {0, 1} and all(info.n_init == 2 for info in seen)
    best = [info.lower_bound for info in seen if info.init == 0]
    assert best == sorted(best)  # EM: the bound never decreases
    pytest.importorskip("tqdm")
    GaussianMixture(3, random_state=0, backend="numpy", callback="tqdm").fit(X)
    assert "EM init 1/1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="callback"):
        GaussianMixture(3, callback="bar").fit(X)
