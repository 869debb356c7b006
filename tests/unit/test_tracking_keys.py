"""MLflow refuses metric names with '@' (ndcg@10): the one tracker (training and ALS) renames
them instead of losing the run."""

import pytest

from hybridrec.tracking import mlflow_key

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


def test_the_store_follows_the_models_folder(tmp_path) -> None:
    from hybridrec.config import AlsConfig, TrainConfig
    from hybridrec.tracking import tracking_uri

    assert tracking_uri(TrainConfig(), "dbfs:/models/") == "dbfs:/models/mlruns"  # stays remote
    assert tracking_uri(AlsConfig(), "s3://bucket/models") == "s3://bucket/models/mlruns"
    assert tracking_uri(AlsConfig(), str(tmp_path)) == (tmp_path / "mlruns").resolve().as_uri()
    assert tracking_uri(TrainConfig(mlflow_tracking_uri="databricks"), str(tmp_path)) == "databricks"


def test_a_training_run_is_logged_with_the_same_rules_as_als(tmp_path, monkeypatch) -> None:
    """Epoch metrics by step, '@' renamed, NaN left out, files and documents as artifacts."""
    from mlflow.tracking import MlflowClient

    from hybridrec.config import TrainConfig
    from hybridrec.tracking import log_run

    metrics_file = tmp_path / "metrics.json"
    metrics_file.write_text("{}", encoding="utf-8")
    history = [{"epoch": 1, "loss": 1.5, "val_loss": float("nan")}, {"epoch": 2, "loss": 0.5}]
    run_id = log_run(
        TrainConfig(),
        str(tmp_path),
        "v1",
        params={"epochs": 2, "k@10": "x" * 900},
        metrics={"image_ndcg@10": 0.25, "broken": float("inf")},
        epoch_metrics={"image": history},
        files=[str(metrics_file), str(tmp_path / "absent.json")],
        documents={"extra.json": {"a": 1}},
        tags={"model_version": "v1"},
    )
    assert run_id is not None
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "hybridrec-train"
    assert run.info.status == "FINISHED" and run.data.tags["model_version"] == "v1"
    assert run.data.metrics == {"image_ndcg_at_10": 0.25, "image_loss": 0.5}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "image_loss")] == [(1, 1.5), (2, 0.5)]
    assert run.data.params["epochs"] == "2" and len(run.data.params["k_at_10"]) == 500
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["extra.json", "metrics.json"]
