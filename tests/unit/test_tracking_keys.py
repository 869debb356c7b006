"""MLflow refuses metric names with '@' (ndcg@10): the ALS tracker renames them instead of losing the run."""
import pytest

from hybridrec.collab.tracking import mlflow_key

pytestmark = pytest.mark.unit


def test_metric_names_become_mlflow_safe() -> None:
    assert mlflow_key("als_ndcg@10") == "als_ndcg_at_10"
    assert mlflow_key("eval test/users: a-b.c") == "eval test/users: a-b.c"
    assert mlflow_key("weird|name") == "weird_name"


def test_mlflow_accepts_the_renamed_keys(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tmp_path.as_uri())
    run = client.create_run(client.create_experiment("keys"))
    client.log_metric(run.info.run_id, mlflow_key("als_precision@10"), 0.5)
    assert client.get_run(run.info.run_id).data.metrics == {"als_precision_at_10": 0.5}
