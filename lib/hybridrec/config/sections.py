"""The settings of a hybridrec run: one dataclass per section of the YAML files in conf/.

Why here and only here: every setting is declared once, with its default, its sane range
(``LIMITS``) and the checks that need more than a type (``__post_init__``), so a misspelt key or an
impossible value stops a job at start-up with one message naming the key and the fix, not an hour
later inside a Spark task. Reading files and overrides is ``hybridrec.config.loader``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar

from hybridrec.config.loader import INT32_MAX, ConfigError, Limit, one_of, path_field


@dataclass
class SparkConfig:
    """How the one SparkSession is built (see ``hybridrec.spark``)."""

    app_name: str = "hybridrec"
    # Used when the job starts its own JVM (plain ``python``); ``spark-submit --master`` wins.
    master: str = "local[*]"
    # Bind the driver and Spark's services to this address; null on clusters (Databricks).
    local_ip: str | None = "127.0.0.1"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    # Tasks Delta uses to rebuild a table's state from its log (Delta's own default is 50, sized for
    # clusters: on 2 cores those tasks dominate small tables' reads and commits). null = Delta's.
    delta_snapshot_partitions: int | None = 2
    # Check at start-up that the Delta Lake classes load (off where the platform provides Delta).
    require_delta: bool = True
    ui_enabled: bool = True
    # Any other Spark settings, passed through unchanged.
    conf: dict[str, str] = field(default_factory=dict)

    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "shuffle_partitions": Limit(1, 100_000),
        "delta_snapshot_partitions": Limit(1, 100_000),
    }


@dataclass
class PathsConfig:
    """Where data lives."""

    # Root folder for the Delta tables (``<warehouse>/<layer>/<table>``) when no metastore is used.
    warehouse: str = path_field("../data/warehouse")
    # Parquet features written by preprocess and read by Petastorm during training.
    features: str = path_field("../data/features")
    # Versioned model folders (``<models>/<version>/``).
    models: str = path_field("../data/models")
    # Raw input files (catalog, images, interactions) for ingest.
    raw: str = path_field("../data/raw")
    # Spark checkpoint directory (ALS lineage, long iterative jobs).
    checkpoints: str = path_field("../data/checkpoints")
    # Offline evaluation report.
    report: str = path_field("../report")


@dataclass
class TablesConfig:
    """Table naming. With ``uc_catalog`` set (Unity Catalog) tables are ``uc_catalog.schema.table``;
    without it they are Delta folders under ``paths.warehouse``.

    ``uc_catalog`` was ``catalog``, renamed so it cannot be mistaken for the product catalog (the
    top-level ``catalog`` section, the raw input); the old key gets an error naming the new one.
    """

    # The Unity Catalog catalog the tables live in; null = Delta folders (no metastore).
    uc_catalog: str | None = None
    # Prefix for the layer schemas: bronze, quarantine, gold (``<schema_prefix>bronze``).
    schema_prefix: str = ""

    RENAMED: ClassVar[Mapping[str, str]] = {"catalog": "uc_catalog"}

    def __post_init__(self) -> None:
        # Both end up in SQL identifiers and folder names: plain identifier characters only, so a
        # value can neither change a statement nor leave the warehouse folder.
        if self.uc_catalog is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(self.uc_catalog)):
            raise ConfigError(f"tables.uc_catalog must be an identifier (letters, digits, _), got {self.uc_catalog!r}")
        if not re.fullmatch(r"[A-Za-z0-9_]*", str(self.schema_prefix)):
            raise ConfigError(f"tables.schema_prefix may hold only letters, digits and _, got {self.schema_prefix!r}")


@dataclass
class CatalogColumns:
    """Which source column holds each product field; null = the source has no such column."""

    id: str = "id"
    title: str | None = "title"
    description: str | None = "description"
    category: str | None = "category"
    # A column with the image file name/path (relative to ``catalog.image_root``).
    image: str | None = None
    # A column with the time the product was listed (cold-start evaluation); optional.
    listed_at: str | None = None


CATALOG_LAYOUTS = ("generic", "retail_products")
CATALOG_FORMATS = ("csv", "parquet", "jsonl")
MISSING_IMAGE_POLICIES = ("quarantine", "text_only")


@dataclass
class CatalogConfig:
    """The product catalog to ingest.

    ``layout``: ``generic`` (CSV / Parquet / JSON Lines with ``columns``) or ``retail_products``
    (Kaggle's retail-products-classification: train.csv with ImgId, title, description, categories
    and ``<ImgId>.jpg`` files under ``image_root``; the layout fixes format, columns and pattern).
    """

    layout: str = "generic"
    # Catalog file (or folder of files); relative to the config file like every path.
    path: str = path_field("../data/raw/catalog/products.csv")
    file_format: str = "csv"  # csv | parquet | jsonl
    separator: str = ","
    header: bool = True
    # Column names for a CSV without a header line (in file order); null = the header's names, or
    # Spark's _c0, _c1, ... when there is no header.
    column_names: list[str] | None = None
    columns: CatalogColumns = field(default_factory=CatalogColumns)
    # Images live under this folder; an image path that leaves it is quarantined.
    image_root: str | None = path_field("../data/raw/catalog/images")
    # When there is no image column: the file name built from the id, e.g. "{id}.jpg"; null = none.
    image_pattern: str | None = None
    # A referenced image file that does not exist: ``quarantine`` the product (missing_image), or
    # ``text_only``: accept it without a photo (catalogs where only some ids have a photo, e.g. the
    # fashion one with image_pattern "{id}.jpg"). Unreadable files are quarantined either way.
    missing_image: str = "quarantine"
    # Extra source columns kept as product attributes (simulator preferences, reasons, filters).
    attributes: list[str] = field(default_factory=list)
    # Allowed categories; null = any category is accepted.
    categories: list[str] | None = None
    # False: a product without a category is accepted (category null; still recommendable, just
    # not a training label). True: it is quarantined as empty_category.
    require_category: bool = False

    def __post_init__(self) -> None:
        """Reject layouts, formats and patterns the readers do not know, before Spark starts."""
        one_of("catalog.layout", self.layout, CATALOG_LAYOUTS)
        one_of("catalog.file_format", self.file_format, CATALOG_FORMATS)
        one_of("catalog.missing_image", self.missing_image, MISSING_IMAGE_POLICIES)
        if self.image_pattern is not None:
            if "{id}" not in self.image_pattern:
                raise ConfigError(
                    f"catalog.image_pattern {self.image_pattern!r} must contain {{id}} "
                    '(e.g. "{id}.jpg"), or be null when products have no photos'
                )
            if "{" in self.image_pattern.replace("{id}", ""):
                raise ConfigError(f"catalog.image_pattern {self.image_pattern!r}: {{id}} is the only placeholder")
            if self.columns.image is not None:
                raise ConfigError(
                    "set only one of catalog.columns.image (a column with the file name) and "
                    "catalog.image_pattern (a file name built from the id)"
                )
        if not self.separator:
            raise ConfigError('catalog.separator must not be empty (e.g. "," or "\\t")')
        _check_column_names("catalog", self.column_names, self.header)


@dataclass
class InteractionColumns:
    """Which source column holds each interaction field; null = the source has no such column."""

    user: str = "user_id"
    item: str = "product_id"
    event: str | None = "event"
    rating: str | None = None
    timestamp: str = "ts"


INTERACTION_FORMATS = ("csv", "parquet")


@dataclass
class InteractionsConfig:
    """User-product interactions to ingest (implicit feedback).

    With an ``event`` column the weight is ``event_weights[event]`` (times the rating when there is
    also a rating column); with only a ``rating`` column the event is ``rating`` and the weight is
    the rating. ``path: null`` ingests the catalog only.
    """

    path: str | None = path_field("../data/raw/interactions/interactions.csv")
    file_format: str = "csv"  # csv | parquet
    separator: str = ","
    header: bool = True
    # Column names for a CSV without a header line (in file order), e.g. [user, item, rating, ts].
    column_names: list[str] | None = None
    columns: InteractionColumns = field(default_factory=InteractionColumns)
    # Timestamp format for string timestamps (Spark datetime pattern); null = ISO-8601 or epoch seconds.
    timestamp_format: str | None = None
    # Implicit-feedback weight per event type; events not listed are quarantined.
    event_weights: dict[str, float] = field(default_factory=lambda: {"view": 1.0, "cart": 3.0, "purchase": 5.0})
    # With a rating column: ratings below this are quarantined (below_min_rating), not weighted.
    min_rating: float = 0.0
    # True when these interactions come from the simulator (hybridrec demo-data), false when they
    # record real behaviour: the evaluation report states which, so its figures are read rightly.
    simulated: bool = False

    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "event_weights": Limit(0, 1e6),
        "min_rating": Limit(-1e6, 1e6),
    }

    def __post_init__(self) -> None:
        """Reject mappings the reader cannot turn into (user, product, ts, event, weight)."""
        one_of("interactions.file_format", self.file_format, INTERACTION_FORMATS)
        if self.columns.event is None and self.columns.rating is None:
            raise ConfigError(
                "interactions.columns needs an event column or a rating column (set "
                "interactions.columns.event or interactions.columns.rating)"
            )
        for event, weight in self.event_weights.items():
            if not weight >= 0.0:
                raise ConfigError(f"interactions.event_weights.{event} must be a number >= 0, got {weight}")
        if not self.separator:
            raise ConfigError('interactions.separator must not be empty (e.g. "," or "\\t")')
        _check_column_names("interactions", self.column_names, self.header)


def _check_column_names(section: str, names: list[str] | None, header: bool) -> None:
    if names is None:
        return
    if header:
        raise ConfigError(
            f"{section}.column_names names the columns of a file without a header line: set "
            f"{section}.header to false, or drop column_names to use the header's names"
        )
    if len(set(names)) != len(names) or any(not n for n in names):
        raise ConfigError(f"{section}.column_names must be distinct, non-empty names; got {names}")


@dataclass
class DemoConfig:
    """The seeded demo data: a generated catalog (or a real one) plus simulated interactions.

    Everything is drawn from ``numpy.random.default_rng(seed)`` and timestamps end at the fixed
    ``reference_date`` (never wall-clock now), so the same config writes the same bytes.
    """

    seed: int = 42
    # generated | fashion (the real catalog in ../shared/data/fashion, when present)
    catalog: str = "generated"
    fashion_path: str = path_field("../../shared/data/fashion")
    n_products: int = 2000
    n_categories: int = 12
    image_size: int = 64
    n_users: int = 1000
    # Mean events per user (views, carts and purchases together); days of history simulated.
    events_per_user: float = 30.0
    days: int = 56
    # End of the simulated window (ISO-8601 UTC); fixed so that runs are reproducible.
    reference_date: str = "2026-01-01T00:00:00Z"
    # Share of products that arrive late (listed near the end, little or no history).
    late_share: float = 0.1
    # Late products are listed during this last fraction of the window.
    late_window: float = 0.25
    # Zipf exponent of item popularity.
    zipf_a: float = 1.1
    # Catalog attributes users have preferences over (fashion: gender, baseColour, usage, season).
    preference_attributes: list[str] = field(default_factory=list)
    # Generated catalog: share of products without a photo / without a description.
    no_photo_share: float = 0.05
    no_description_share: float = 0.08
    # Share of users who are new: they join during the last late_window and make 1-3 views.
    sparse_user_share: float = 0.15

    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "seed": Limit(0, INT32_MAX),
        "n_products": Limit(1, 10_000_000),
        "n_categories": Limit(1, 100_000),
        "image_size": Limit(16, 1024, why="pixels"),
        "n_users": Limit(1, 100_000_000),
        "events_per_user": Limit(0, 100_000, lo_open=True),
        "days": Limit(1, 36_500),
        "late_share": Limit(0, 1),
        "late_window": Limit(0, 1, lo_open=True),
        "zipf_a": Limit(0, 100, lo_open=True),
        "no_photo_share": Limit(0, 1),
        "no_description_share": Limit(0, 1),
        "sparse_user_share": Limit(0, 1),
    }

    def __post_init__(self) -> None:
        """Reject sizes and shares the generator cannot honour, before anything is written."""
        one_of("demo.catalog", self.catalog, ("generated", "fashion"))
        for key in ("n_products", "n_categories", "image_size", "n_users", "days"):
            if getattr(self, key) < 1:
                raise ConfigError(f"demo.{key} must be at least 1, got {getattr(self, key)}")
        if self.image_size < 16:
            raise ConfigError(f"demo.image_size must be at least 16 pixels, got {self.image_size}")
        if self.n_products < self.n_categories:
            raise ConfigError(
                f"demo.n_products ({self.n_products}) must be at least demo.n_categories "
                f"({self.n_categories}) so that every generated category has a product"
            )
        if not self.events_per_user > 0:
            raise ConfigError(f"demo.events_per_user must be > 0, got {self.events_per_user}")
        if not self.zipf_a > 0:
            raise ConfigError(f"demo.zipf_a must be > 0, got {self.zipf_a}")
        for key in ("late_share", "no_photo_share", "no_description_share", "sparse_user_share"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"demo.{key} must be in [0, 1), got {getattr(self, key)}")
        if not 0.0 < self.late_window < 1.0:
            raise ConfigError(f"demo.late_window must be in (0, 1), got {self.late_window}")
        try:
            stamp = datetime.fromisoformat(self.reference_date.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(
                f"demo.reference_date must be ISO-8601 like 2026-01-01T00:00:00Z, got {self.reference_date!r}"
            ) from exc
        if stamp.tzinfo is None:
            raise ConfigError(
                f"demo.reference_date must name its time zone (end it with Z), got {self.reference_date!r}"
            )


LABEL_SOURCES = ("category", "title_keyword")
# How a photo becomes the model's square (hybridrec.features.images applies them).
IMAGE_FITS = ("stretch", "pad", "crop")


@dataclass
class FeaturesConfig:
    """Preprocessing of images and text into Parquet features for Petastorm."""

    image_size: int = 64
    # How a non-square photo becomes the square: stretch (resize, aspect not kept) | pad (aspect
    # kept, centred on white) | crop (the centred square). Stretch was chosen on the fashion
    # catalog (224x224 copies squashed from 3:4 originals): on 2,299 new 225x300 photos the image
    # model scored 0.716 stretched, 0.594 cropped, 0.533 padded (0.740 on its test split). Serving
    # (freshness) decodes with the rule recorded in the model's manifest, not this key.
    image_fit: str = "stretch"
    max_len: int = 32
    vocab_min_count: int = 2
    vocab_max_size: int = 20000
    # Classes with fewer training examples than this are not used as labels (kept for embeddings).
    min_examples_per_class: int = 50
    # Where the classifiers' labels come from (hybridrec.features.labels): ``category`` = the
    # catalog's category column; ``title_keyword`` = a keyword derived from each title (the last
    # title token that is not a modifier), for catalogs without categories (e.g. Online Retail).
    label_source: str = "category"
    # Catalog attributes (kept by catalog.attributes) the content models learn beside the category,
    # one head each on the shared embedding (hybridrec.features.labels): the product vector then
    # carries colour, gender, usage... Empty = the category alone. Fashion lists its six attributes.
    label_heads: list[str] = field(default_factory=list)
    # Fractions of the stable hash split by product id; test gets the rest.
    train_fraction: float = 0.8
    val_fraction: float = 0.1
    # Parquet row-group size for the image features (rows), sized for Petastorm readers.
    image_rows_per_group: int = 512
    text_rows_per_group: int = 8192

    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "image_size": Limit(1, 1024),
        "max_len": Limit(1, 10_000),
        "vocab_min_count": Limit(1, 1_000_000),
        "vocab_max_size": Limit(3, 10_000_000, why="ids 0 and 1 are PAD and UNK"),
        "min_examples_per_class": Limit(1, 100_000_000),
        "train_fraction": Limit(0, 1),
        "val_fraction": Limit(0, 1),
        "image_rows_per_group": Limit(1, 1_000_000),
        "text_rows_per_group": Limit(1, 10_000_000),
    }

    def __post_init__(self) -> None:
        """Reject values that would only fail (or silently mislead) deep inside the Spark job."""
        one_of("features.label_source", self.label_source, LABEL_SOURCES)
        one_of("features.image_fit", self.image_fit, IMAGE_FITS)
        positive = {
            "image_size": self.image_size,
            "max_len": self.max_len,
            "vocab_min_count": self.vocab_min_count,
            "min_examples_per_class": self.min_examples_per_class,
            "image_rows_per_group": self.image_rows_per_group,
            "text_rows_per_group": self.text_rows_per_group,
        }
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"features.{key} must be at least 1, got {value}")
        if self.vocab_max_size < 3:
            raise ConfigError(
                f"features.vocab_max_size must be at least 3 (ids 0 and 1 are PAD and UNK), got {self.vocab_max_size}"
            )
        if not (0.0 < self.train_fraction < 1.0 and 0.0 <= self.val_fraction < 1.0):
            raise ConfigError(
                "features.train_fraction must be in (0, 1) and features.val_fraction in [0, 1), got "
                f"{self.train_fraction} and {self.val_fraction}"
            )
        if self.train_fraction + self.val_fraction > 1.0:
            raise ConfigError(
                "features.train_fraction + features.val_fraction must be at most 1 (test gets the "
                f"rest), got {self.train_fraction} + {self.val_fraction}"
            )


@dataclass
class MlflowSettings:
    """Where a section's job logs its runs to MLflow: the ``mlflow_*`` keys of ``train`` and ``als``.

    Declared once here and inherited, so both jobs read the same two keys the same way
    (``hybridrec.tracking``). Logging is best effort: a failure is a warning and the model is
    saved whatever happens.
    """

    # null = a local file store under paths.models/mlruns; "databricks" on Databricks.
    mlflow_tracking_uri: str | None = None
    # null = the section's own experiment (``EXPERIMENT``: hybridrec-train, hybridrec-als).
    mlflow_experiment: str | None = None

    EXPERIMENT: ClassVar[str] = "hybridrec"

    def __post_init__(self) -> None:
        if self.mlflow_experiment is None:
            self.mlflow_experiment = self.EXPERIMENT


@dataclass
class TrainConfig(MlflowSettings):
    """Distributed training of the content models (image CNN, text LSTM, fusion) with Horovod."""

    # Horovod processes; null = the Spark executors' total cores (local[N]: N).
    num_proc: int | None = None
    # TensorFlow threads per Horovod process; null = the machine's cores / num_proc (at least 1).
    threads_per_proc: int | None = None
    epochs: int = 20
    batch_size: int = 64
    # Learning rate of one process; Horovod scales it by the number of processes, after warm-up.
    learning_rate: float = 0.002
    warmup_epochs: int = 1
    # Stop when the validation loss has not improved for this many epochs (0 = never stop early).
    early_stopping_patience: int = 6
    # Image model: small_cnn (default, minutes on CPU) | mobilenet_v2 | efficientnet_b0 (from
    # scratch: no pretrained weights are downloaded).
    image_model: str = "small_cnn"
    image_embedding_dim: int = 128
    # Training-only photo augmentation of the image model (hybridrec.models.cnn), so photos framed
    # unlike the training ones (padded, bordered, other aspect) do not fall off. image_zoom_out: the
    # largest share of the side the product may lose, on white (0.5 = down to half the side, as in a
    # padded 3:4 photo or a white border); image_aspect_jitter: the largest relative stretch or squash
    # of the height against the width (0.25 = up to 25 %). 0 switches either off.
    image_zoom_out: float = 0.5
    image_aspect_jitter: float = 0.25
    # Text model: token embedding -> (bi)LSTM -> dense embedding.
    token_embedding_dim: int = 64
    lstm_units: int = 64
    bidirectional: bool = True
    text_embedding_dim: int = 128
    # Weight of each attribute head's loss (features.label_heads) next to the category head's 1.0.
    # 0.5: with six fashion heads the category still carries a quarter of the loss.
    head_loss_weight: float = 0.5
    # Fusion classifier on [image_emb, text_emb] (products with both); trained on rank 0's driver.
    fusion_epochs: int = 30
    # Fill a product's missing image (or text) half of fused_emb with the one predicted from its
    # other modality (ridge maps fitted with the fusion classifier), so text-only and photo products
    # compare on one scale; false = the half stays zero (a text-only product's cosine with a photo
    # product is then at most ~0.71). image_emb / text_emb stay null either way.
    impute_missing_modality: bool = True
    # L2 penalty of those maps (on L2-normalised vectors); larger = predictions closer to the mean.
    impute_ridge: float = 1.0
    # Which models to train: any of image, text (fusion needs both).
    models: list[str] = field(default_factory=lambda: ["image", "text"])
    # Model folder name under paths.models; null = derived from the features run and these settings,
    # so re-running the same training resumes (or reuses) the same version.
    model_version: str | None = None
    # Cap on steps per epoch (tests, quick profiles); null = a full pass over each rank's shard.
    max_steps_per_epoch: int | None = None
    shuffle_buffer: int = 2048
    seed: int = 42
    # Rows per Arrow batch in the embedding inference pandas UDF.
    inference_batch_size: int = 512
    # Network interfaces Horovod's Gloo rendezvous may use; ``lo`` keeps it on 127.0.0.1.
    nics: list[str] = field(default_factory=lambda: ["lo"])
    # Seconds to wait for all Horovod processes to start.
    start_timeout: int = 600

    EXPERIMENT: ClassVar[str] = "hybridrec-train"
    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "num_proc": Limit(1, 4096),
        "threads_per_proc": Limit(1, 1024),
        "epochs": Limit(1, 100_000),
        "fusion_epochs": Limit(1, 100_000),
        "impute_ridge": Limit(0, 1_000_000, lo_open=True, why="0 leaves the fit singular with few products"),
        "batch_size": Limit(1, 1_000_000),
        "inference_batch_size": Limit(1, 1_000_000),
        "learning_rate": Limit(0, 10, lo_open=True),
        "warmup_epochs": Limit(0, 100_000),
        "early_stopping_patience": Limit(0, 100_000),
        "image_embedding_dim": Limit(1, 65_536),
        "image_zoom_out": Limit(0, 0.75, why="share of the side; 0.75 leaves the product a quarter of it"),
        "image_aspect_jitter": Limit(0, 0.5, why="share of the height; 0.5 halves or doubles it"),
        "token_embedding_dim": Limit(1, 65_536),
        "lstm_units": Limit(1, 65_536),
        "text_embedding_dim": Limit(1, 65_536),
        "head_loss_weight": Limit(0, 100),
        "max_steps_per_epoch": Limit(1, 100_000_000),
        "shuffle_buffer": Limit(1, 100_000_000),
        "seed": Limit(0, INT32_MAX),
        "start_timeout": Limit(1, 86_400, why="seconds"),
    }

    def __post_init__(self) -> None:
        """Reject settings that would only fail inside a Horovod worker."""
        super().__post_init__()
        one_of("train.image_model", self.image_model, ("small_cnn", "mobilenet_v2", "efficientnet_b0"))
        for key in (
            "epochs",
            "batch_size",
            "image_embedding_dim",
            "token_embedding_dim",
            "lstm_units",
            "text_embedding_dim",
            "fusion_epochs",
            "shuffle_buffer",
            "inference_batch_size",
            "start_timeout",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("num_proc", "threads_per_proc", "max_steps_per_epoch"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"train.{key} must be at least 1 (or null), got {value}")
        if self.warmup_epochs < 0 or self.early_stopping_patience < 0:
            raise ConfigError("train.warmup_epochs and train.early_stopping_patience must be >= 0")
        if not self.learning_rate > 0:
            raise ConfigError(f"train.learning_rate must be > 0, got {self.learning_rate}")
        for key in ("image_zoom_out", "image_aspect_jitter"):
            top = self.LIMITS[key].hi
            if not 0.0 <= getattr(self, key) <= (top or 0.0):
                raise ConfigError(f"train.{key} must be in [0, {top}] (0 = off), got {getattr(self, key)}")
        if not self.models or any(m not in ("image", "text") for m in self.models):
            raise ConfigError(f"train.models must list image and/or text, got {self.models}")
        if self.model_version is not None and not re.fullmatch(r"[A-Za-z0-9._-]+", self.model_version):
            raise ConfigError(
                f"train.model_version may hold letters, digits, '.', '_' and '-' only, got {self.model_version!r}"
            )


@dataclass
class AlsConfig(MlflowSettings):
    """Collaborative filtering: Spark ALS on implicit feedback (``hybridrec.collab``).

    Confidence of a (user, product) pair: the events' weights (``event_weights``, else the weight
    ingest stored), each halved every ``half_life_days`` before the cutoff, summed per pair and
    passed through ``transform``; Spark then uses ``1 + alpha * r``. ``reg_param`` is Spark's: it
    is multiplied by each user's (item's) number of rated items, unlike implicit's regularization.
    """

    seed: int = 42
    # Weight per event type; null = the weight ingest stored (interactions.event_weights at ingest).
    event_weights: dict[str, float] | None = None
    # Time decay: an event's weight halves every half_life_days before the end of the data used
    # (the last usable event before the cutoff, so a historical log is not decayed to nothing by
    # the years between its end and tonight); null = no decay.
    half_life_days: float | None = 28.0
    # Per-pair aggregation of the decayed weights: sum | log1p (r = log(1 + sum), damps repeats).
    transform: str = "log1p"
    # Model (used as they are when tune is false).
    rank: int = 64
    reg_param: float = 0.3
    alpha: float = 3.0
    max_iter: int = 10
    # Checkpoint the factors' lineage every N iterations (under paths.checkpoints/als); 0 = never.
    checkpoint_interval: int = 5
    # User and item blocks of Spark's ALS; null = the session's default parallelism.
    num_blocks: int | None = None
    # Candidates per user written for the hybrid step, and how they are computed:
    # blocked (user blocks x item blocks, numpy matrix products in pandas UDFs) | recommend_for_all
    # (ALSModel.recommendForAllUsers). See bench/results/als.json for the measured difference.
    top_k: int = 100
    topk_method: str = "blocked"
    topk_user_block: int = 4096
    topk_item_block: int = 32768
    # Offline evaluation on a temporal holdout before the final fit (metrics saved and logged).
    evaluate: bool = True
    eval_k: int = 10
    # last_days: the last holdout_days before the cutoff are the test window (validation: the
    # holdout_days before that); last_n: each user's last holdout_n events (validation: the n before).
    holdout: str = "last_days"
    holdout_days: float = 7.0
    holdout_n: int = 3
    # Search over the lists below (plus the settings above, always a candidate) on a validation
    # holdout of the training part; the best NDCG@eval_k wins.
    tune: bool = False
    # Validation for tuning: last_n = every user's last holdout_n events before the evaluation's
    # own split (all users with more than holdout_n events, so the choice rests on many users);
    # last_days = the holdout_days before it (one window: few users on a sparse log).
    tune_holdout: str = "last_n"
    tune_search: str = "grid"  # grid | random (tune_max_trials draws from the grid, seeded)
    tune_rank: list[int] = field(default_factory=lambda: [32, 64])
    tune_reg_param: list[float] = field(default_factory=lambda: [0.1, 0.3, 1.0])
    tune_alpha: list[float] = field(default_factory=lambda: [1.0, 3.0, 10.0])
    tune_max_iter: list[int] = field(default_factory=lambda: [10])
    tune_max_trials: int = 8

    EXPERIMENT: ClassVar[str] = "hybridrec-als"
    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "seed": Limit(0, INT32_MAX),
        "event_weights": Limit(0, 1e6),
        "half_life_days": Limit(0, 36_500, lo_open=True, why="null = no decay"),
        "rank": Limit(1, 4096),
        "tune_rank": Limit(1, 4096),
        "reg_param": Limit(0, 1e6),
        "tune_reg_param": Limit(0, 1e6),
        "alpha": Limit(0, 1e6),
        "tune_alpha": Limit(0, 1e6),
        "max_iter": Limit(1, 10_000),
        "tune_max_iter": Limit(1, 10_000),
        "checkpoint_interval": Limit(0, 10_000, why="0 = never"),
        "num_blocks": Limit(1, 100_000),
        "top_k": Limit(1, 10_000),
        "eval_k": Limit(1, 10_000),
        "topk_user_block": Limit(1, 1_000_000),
        "topk_item_block": Limit(1, 10_000_000),
        "holdout_days": Limit(0, 36_500, lo_open=True),
        "holdout_n": Limit(1, 100_000),
        "tune_max_trials": Limit(1, 10_000),
    }

    def __post_init__(self) -> None:
        """Reject settings Spark would only reject (or silently misuse) in the middle of a fit."""
        super().__post_init__()
        one_of("als.transform", self.transform, ("sum", "log1p"))
        one_of("als.topk_method", self.topk_method, ("blocked", "recommend_for_all"))
        one_of("als.holdout", self.holdout, ("last_days", "last_n"))
        one_of("als.tune_search", self.tune_search, ("grid", "random"))
        one_of("als.tune_holdout", self.tune_holdout, ("last_days", "last_n"))
        for key in (
            "rank",
            "max_iter",
            "top_k",
            "eval_k",
            "topk_user_block",
            "topk_item_block",
            "holdout_n",
            "tune_max_trials",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"als.{key} must be at least 1, got {getattr(self, key)}")
        if self.checkpoint_interval < 0:
            raise ConfigError(f"als.checkpoint_interval must be >= 0 (0 = never), got {self.checkpoint_interval}")
        if self.num_blocks is not None and self.num_blocks < 1:
            raise ConfigError(f"als.num_blocks must be at least 1 (or null), got {self.num_blocks}")
        for key in ("reg_param", "alpha"):
            if not getattr(self, key) >= 0.0:
                raise ConfigError(f"als.{key} must be a number >= 0, got {getattr(self, key)}")
        for key in ("half_life_days", "holdout_days"):
            value = getattr(self, key)
            if value is not None and not value > 0.0:
                raise ConfigError(f"als.{key} must be > 0, got {value}")
        for event, weight in (self.event_weights or {}).items():
            if not weight >= 0.0:
                raise ConfigError(f"als.event_weights.{event} must be a number >= 0, got {weight}")
        grids = {
            "tune_rank": self.tune_rank,
            "tune_reg_param": self.tune_reg_param,
            "tune_alpha": self.tune_alpha,
            "tune_max_iter": self.tune_max_iter,
        }
        for key, values in grids.items():
            if not values:
                raise ConfigError(f"als.{key} must list at least one value")
        if min(self.tune_rank) < 1 or min(self.tune_max_iter) < 1:
            raise ConfigError("als.tune_rank and als.tune_max_iter values must be at least 1")
        if min(self.tune_reg_param) < 0 or min(self.tune_alpha) < 0:
            raise ConfigError("als.tune_reg_param and als.tune_alpha values must be >= 0")


EXCLUDE_RULES = ("interacted", "purchased", "none")
ANN_MODES = ("auto", "exact", "ivf")  # recommend.ann: see RecommendConfig
COLD_MODELS = ("ridge", "mlp")  # recommend.cold_model (hybrid.cold.COLD_MODELS)
SIMILAR_MIXED_PAIRS = ("text", "fused")  # recommend.similar_mixed_pairs (hybrid.similar)
COLD_INPUTS = ("content", "category", "text")  # recommend.cold_inputs (hybrid/cold_inputs.py)


@dataclass
class RecommendConfig:
    """The nightly job (``jobs/recommend.py``, ``hybridrec.hybrid``): hybrid top-N and similar items.

    A (user, item) pair's blended score is ``w * collab + (1 - w) * content``, both normalised to
    [0, 1] within the user's candidates, where ``w = a_u * b_i`` grows with the data behind the pair:
    ``a_u = n_u / (n_u + user_shrinkage)`` (n_u: the user's distinct items), ``b_i = n_i / (n_i +
    item_shrinkage)`` (n_i: the item's distinct users) for a warm item, and ``b_i =
    cold_item_weight`` for a cold item, whose collab score comes from ALS factors regressed on its
    content vector.
    """

    top_n: int = 20
    # What a user already has is never recommended to them again (ALS, content, popular, every list;
    # removed before any candidate depth is cut): interacted = every product with a usable event
    # before the night; purchased = products with an event in purchase_events (a log with no such
    # event at all, e.g. a rating log, is treated as interacted with a warning, never as "nothing
    # purchased"); none = repeats allowed. Default interacted: the one rule that cannot keep seen
    # items in a log of another shape. conf/ chooses per catalog by the backtest.
    exclude: str = "interacted"
    max_per_category: int | None = 4  # items of one category in a user's list; null = no cap
    als_candidates: int = 50  # best ALS candidates per user taken into the blend (<= als.top_k)
    content_candidates: int = 50  # nearest products to the user's content profile
    cold_candidates: int = 20  # cold products scored through the content -> ALS-factor regression
    history_items: int = 20  # the user's most weighted items that form the content profile
    # Chosen by the offline evaluation (docs/results.md): on the simulator content similarity
    # predicts little that ALS has not, so warm pairs lean on ALS as soon as there is any data.
    user_shrinkage: float = 0.1
    item_shrinkage: float = 0.1
    cold_item_weight: float = 0.5
    # Ridge penalty of the content -> ALS-factor regression (content and category standardised, the
    # text's TF-IDF on its own scale); null = one per input part, chosen from 0.1..10000 by R² on a
    # seeded validation share of the fit rows (hybrid/cold.py).
    regression_l2: float | None = None
    # What the cold-item model reads (hybrid/cold_inputs.py): content = the fused content vector,
    # category = one-hot of the catalog category, text = TF-IDF of title + description. Chosen on
    # bench/bench_factors.py --shipped-only, held-out R² of the factors: Online Retail (real
    # purchases) 0.016 -> 0.355, fashion (simulated shoppers) 0.107 -> 0.394 (docs/results.md).
    cold_inputs: list[str] = field(default_factory=lambda: ["content", "category", "text"])
    # TF-IDF columns: the terms found in most products, and whether a term is a word (1) or also a
    # pair of adjacent words (2). Chosen on Online Retail's real purchases (bench/bench_factors.py
    # --shipped-only, docs/results.md "Word pairs"): held-out R² 0.244 (1000 words) -> 0.355; the
    # fashion catalog agrees (0.366 -> 0.394).
    cold_text_terms: int = 3000
    cold_text_ngrams: int = 2
    cold_categories: int = 500  # category columns: the most common categories
    # The cold-item model from cold_inputs to ALS item factors (hybrid/cold.py): ridge (closed
    # form from per-partition sums) or mlp (one ReLU layer trained on the driver on a seeded sample of
    # at most cold_model_max_rows warm products). ridge: held-out R² on the default inputs, Online
    # Retail 0.355 vs mlp 0.059; fashion, on the inputs before word pairs, 0.366 vs 0.297
    # (bench/bench_factors.py --shipped-only).
    cold_model: str = "ridge"
    cold_model_max_rows: int = 100000  # warm products the driver holds to train the mlp head
    # Share of warm products kept out of the fit to report the model's held-out R² and cosine
    # (metrics cold_factor_r2 / cold_factor_cosine); 0 = no figures.
    cold_model_holdout: float = 0.2
    cold_model_seed: int = 21  # the held-out hash, the head's sample and its initialisation
    cold_user_max_items: int = 1  # users with at most this many distinct items get popular lists
    # Popularity = decayed event weight over the last N days of the data (ending at the last usable
    # event before the night, like the ALS decay); null = all history, undecayed.
    popular_days: float | None = 14.0
    popular_per_category: int = 50
    similar_top_m: int = 20
    similar_collab_weight: float = 0.5  # max share of ALS item-factor cosine in similar_items
    # How similar_items compares a product with a photo and one without: text = on their text
    # vectors alone (what both have), fused = on the fused vectors, the missing photo half imputed.
    # Pairs where both or neither have a photo are compared on the fused vectors either way. text
    # chosen on bench/bench_content.py (fashion, validation-split products as new ones, then the
    # test split): text-only products among a photo product's neighbours 0.360 -> 0.479 (catalog
    # 0.773), same type, gender and colour not lower; docs/results.md "Content vectors".
    similar_mixed_pairs: str = "text"
    # Share of title/description TF-IDF cosine in the content side of similar_items (0 = the
    # lexical pass does not run). 0.25 chosen on bench/bench_content.py (fashion, test-split products
    # as new ones, 0.25/0.5/0.75 side by side): the only weight that keeps type, gender and colour
    # all above their targets; see docs/results.md "Content vectors".
    similar_lexical_weight: float = 0.25
    # With true, a product's own lexical share rises with the content model's doubt about its type:
    # lam + (1 - lam) * (1 - p), p = its predicted-type probability (gold.product_embeddings
    # predicted_prob; a product without one keeps lam). A product of a type the classifier never
    # learned gets a low p, and its list leans on its title, where the learned vectors collapse.
    # false stays the default: Online Retail (real purchases, the benchmark of defaults) has no
    # labels to measure similar items on. conf/fashion.yaml sets true (bench/bench_content.py).
    similar_lexical_doubt: bool = False
    # A product's similar_type_vote best neighbours vote (each with its score) for their catalog
    # category; every candidate of the winning one gains similar_type_bonus on the list's score
    # before the top similar_top_m are kept (hybrid/similar.py, type_vote). 0 = off. Off stays the
    # default: Online Retail (real purchases, the benchmark of defaults) has no categories to vote
    # with or to measure similar items on. conf/fashion.yaml sets 3 / 0.5 (bench/bench_content.py,
    # chosen on validation-split products searching the train split, then the test split).
    similar_type_vote: int = 0
    similar_type_bonus: float = 0.5
    # true = a candidate pair missing from the content or the lexical list gets its exact cosine
    # there (two joins of those pairs: hybrid/pair_cosines.py); false = that list's lowest value for
    # the product (no joins). true chosen on bench/bench_content.py's night section (fashion, the
    # night's own Spark lists for test-split products): docs/results.md "Content vectors".
    similar_exact_pairs: bool = True
    # Terms in more than this many products are left out of the lexical pairs (they separate little
    # and their pairs grow with the square of their count): 2000 = 4.7% of the fashion catalog.
    lexical_max_df: int = 2000
    # Labels that weight the lexical terms (hybrid/lexical.py, informative terms): each term's idf
    # times how well it predicts these (category = the catalog's category, other names = keys of
    # catalog.attributes); empty = plain idf, as is a catalog without the labels (Online Retail).
    # [category] chosen on bench/bench_content.py (fashion, test-split products as new ones, the
    # shipped blend): same type 0.930 -> 0.941, type of unknown classes 0.877 -> 0.911, colour
    # 0.640 -> 0.591; the Spark pass 1.11x plain idf's seconds (bench/bench_lexical.py).
    lexical_attributes: list[str] = field(default_factory=lambda: ["category"])
    # Each of the title's last lexical_tail_tokens words counts lexical_tail_weight times in its
    # lexical term frequency (an English title ends with the product's kind: "... Women Gold
    # Earrings"); 1 = raw counts. 1 stays the default: Online Retail (real purchases, the benchmark
    # of defaults) has no labels to measure it on and titles that do not always end with the kind
    # ("JUMBO BAG RED RETROSPOT"). conf/fashion.yaml sets 2 (bench/bench_content.py, see there).
    lexical_tail_weight: float = 1.0
    lexical_tail_tokens: int = 2
    user_block: int = 4096  # users per block in the content scoring UDF
    content_item_block: int = 200000  # all product vectors of one exact scoring block (its catalog limit)
    # Similar items' neighbours (content vectors and ALS item factors) and users' content
    # candidates: exact = the blocked self-join / one block of every vector (recall 1, quadratic in
    # products); ivf = approximate inverted-file search in Spark (hybrid/ann.py: near-linear,
    # recall measured in bench/results/catalog.json); auto = exact up to ann_auto_above products,
    # ivf above.
    ann: str = "auto"
    ann_auto_above: int = 200000
    ann_lists: int | None = None  # inverted lists; null = round(sqrt(products))
    # Lists each query searches: recall rises, time grows ~linearly with it. null = max(8, 1.6 % of
    # the lists): 8 up to ~500 lists (300k products), 16 at 1M (content recall@20 0.989 there
    # against 0.872 with 8; bench/results/catalog.json).
    ann_nprobe: int | None = None
    ann_sample: int = 50000  # vectors the k-means centroids are trained on (held by the driver)
    ann_seed: int = 23  # the sample's hash and the k-means seed
    refit_als: bool = True  # refit ALS on all events before the run date (else reuse the night's)
    embed_new_products: bool = True  # embed products missing from gold.product_embeddings first
    keep_nights: int = 14  # older run_date partitions are deleted after a successful night
    vacuum: bool = True  # VACUUM after the delete, with the table's retention (>= 7 days)
    vacuum_retain_hours: float = 168.0
    vacuum_every_days: float = 7.0  # VACUUM when the table's last one is this old (it lists every file)
    max_future_days: int = 1  # --run-date may be at most this many days after today (UTC)
    purchase_events: list[str] = field(default_factory=lambda: ["purchase"])  # see exclude

    # A list longer than MAX_TOP_N is no recommendation but a catalog dump, and the nightly table
    # grows by users x top_n rows: refused at load rather than an hour into the night.
    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "top_n": Limit(1, 1000),
        "max_per_category": Limit(1, 1000, why="null = no cap"),
        "als_candidates": Limit(1, 10_000),
        "content_candidates": Limit(1, 10_000),
        "cold_candidates": Limit(1, 10_000),
        "history_items": Limit(1, 10_000),
        "user_shrinkage": Limit(0, 1e6, lo_open=True),
        "item_shrinkage": Limit(0, 1e6, lo_open=True),
        "regression_l2": Limit(0, 1e6, lo_open=True),
        "cold_text_terms": Limit(0, 20_000, why="each term is a column of the cold model's input"),
        "cold_categories": Limit(0, 20_000, why="each category is a column of the cold model's input"),
        "cold_text_ngrams": Limit(1, 2, why="1 = words, 2 = words and adjacent word pairs"),
        "cold_model_max_rows": Limit(10, 10_000_000, why="the driver holds this many vectors and factors"),
        "cold_model_holdout": Limit(0, 0.5, why="0 = no held-out figures"),
        "cold_model_seed": Limit(0, INT32_MAX),
        "cold_item_weight": Limit(0, 1),
        "similar_collab_weight": Limit(0, 1),
        "similar_lexical_weight": Limit(0, 1, why="0 = no lexical neighbours"),
        "similar_type_vote": Limit(0, 1000, why="0 = no vote; at most the neighbours a list is built from"),
        "similar_type_bonus": Limit(0, 10, why="0 = no vote; added to scores on a cosine scale"),
        "lexical_max_df": Limit(2, 100_000_000, why="a term in one product pairs it with nothing"),
        "lexical_tail_weight": Limit(1, 100, why="1 = raw term counts"),
        "lexical_tail_tokens": Limit(1, 100),
        "cold_user_max_items": Limit(0, 1_000_000),
        "popular_days": Limit(0, 36_500, lo_open=True, why="null = all history"),
        "popular_per_category": Limit(1, 10_000),
        "similar_top_m": Limit(1, 1000),
        "user_block": Limit(1, 1_000_000),
        "content_item_block": Limit(1, 10_000_000),
        "ann_auto_above": Limit(0, INT32_MAX),
        "ann_lists": Limit(1, 1_000_000, why="null = round(sqrt(products))"),
        "ann_nprobe": Limit(1, 10_000),
        "ann_sample": Limit(1, 10_000_000, why="the driver holds sample x dimensions floats"),
        "ann_seed": Limit(0, INT32_MAX),
        "keep_nights": Limit(1, 36_500),
        "vacuum_retain_hours": Limit(
            168,
            876_000,
            why="below 168 (Delta's safety minimum) VACUUM could delete files a running reader still needs",
        ),
        "vacuum_every_days": Limit(0, 36_500),
        "max_future_days": Limit(0, 36_500),
    }

    def __post_init__(self) -> None:
        one_of("recommend.exclude", self.exclude, EXCLUDE_RULES)
        one_of("recommend.ann", self.ann, ANN_MODES)
        one_of("recommend.cold_model", self.cold_model, COLD_MODELS)
        one_of("recommend.similar_mixed_pairs", self.similar_mixed_pairs, SIMILAR_MIXED_PAIRS)
        unknown = [p for p in self.cold_inputs if p not in COLD_INPUTS]
        if unknown or not self.cold_inputs or len(set(self.cold_inputs)) != len(self.cold_inputs):
            raise ConfigError(
                f"recommend.cold_inputs must list some of {', '.join(COLD_INPUTS)}, each once; got {self.cold_inputs}"
            )
        if self.max_per_category is not None and self.max_per_category < 1:
            raise ConfigError(
                f"recommend.max_per_category must be at least 1 (or null = no cap), got {self.max_per_category}"
            )
        if self.popular_days is not None and not self.popular_days > 0.0:
            raise ConfigError(f"recommend.popular_days must be > 0 (or null = all history), got {self.popular_days}")
        for key in (
            "top_n",
            "als_candidates",
            "content_candidates",
            "cold_candidates",
            "history_items",
            "popular_per_category",
            "similar_top_m",
            "user_block",
            "content_item_block",
            "keep_nights",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"recommend.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("user_shrinkage", "item_shrinkage"):
            if not getattr(self, key) > 0.0:
                raise ConfigError(f"recommend.{key} must be > 0, got {getattr(self, key)}")
        if self.regression_l2 is not None and not self.regression_l2 > 0.0:
            raise ConfigError(f"recommend.regression_l2 must be > 0 (or null = chosen), got {self.regression_l2}")
        for key in ("cold_item_weight", "similar_collab_weight", "similar_lexical_weight"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(f"recommend.{key} must be within [0, 1], got {getattr(self, key)}")
        if len(set(self.lexical_attributes)) != len(self.lexical_attributes):
            raise ConfigError(f"recommend.lexical_attributes lists an attribute twice: {self.lexical_attributes}")
        if self.lexical_max_df < 2:
            raise ConfigError(
                f"recommend.lexical_max_df must be at least 2 (a term in one product pairs it with nothing), "
                f"got {self.lexical_max_df}"
            )
        if self.cold_user_max_items < 0 or self.max_future_days < 0:
            raise ConfigError("recommend.cold_user_max_items and recommend.max_future_days must be >= 0")
        if self.vacuum_retain_hours < 168.0:
            raise ConfigError(
                "recommend.vacuum_retain_hours below 168 (Delta's safety minimum) could delete files "
                f"a running reader still needs; got {self.vacuum_retain_hours}"
            )


RANKER_MODES = ("auto", "off")  # ranker.use: see RankerConfig


@dataclass
class RankerConfig(MlflowSettings):
    """The learned second stage (``hybridrec.hybrid.ranker``, ``jobs/train_ranker.py``).

    Candidates from every source (ALS, content, cold, popular, repeats, co-interaction, lexical) get per-pair features
    (``hybrid.pair_features.FEATURES``) and a gradient-boosted ranker (``xgboost.spark``) orders
    them. It is trained on the data's own history: features as of ``label_days`` before the end of
    the data, labels = what each user did in those last ``label_days``. The nightly job uses the
    current ranker when ``use`` is auto and one exists, else the hand-set blend (stated in gold.runs).
    """

    use: str = "auto"  # auto = the current ranker when one exists, else the blend; off = always the blend
    label_days: float = 14.0  # the window whose events are the training labels
    popular_candidates: int = 50  # most popular products (recent window) added to every user's candidates
    repeat_candidates: int = 50  # a user's own products (when recommend.exclude allows them back)
    # Co-interaction ("bought together") candidates: neighbours of the user's co_recent latest
    # products, from pairs among each user's co_per_user strongest products; 0 = off.
    co_neighbours: int = 20
    co_recent: int = 5
    co_per_user: int = 30
    # Lexical candidates: the title/description neighbours (hybrid/lexical.py, the similar items'
    # TF-IDF) of the user's lexical_recent latest products, their cosines summed; 0 = off. 20 chosen
    # on bench/bench_ranker.py, Online Retail (real purchases): pool recall 0.393 -> 0.410, cold-item
    # Recall@10 of the lists 0.013 -> 0.022, learned - ALS NDCG@10 +0.024 -> +0.028, for a pool a
    # quarter larger (docs/results.md, "Third run").
    lexical_neighbours: int = 20
    lexical_recent: int = 5
    negatives: int = 100  # negatives per training user, sampled from the candidates (seeded)
    # Tonight's lists score only the pairs among the user's night_depth best of at least one source
    # (learned.learned_lists); the ranker is still trained on the whole pool. null = the whole pool.
    # 10 chosen on bench/bench_ranker.py, Online Retail (real purchases), against the whole pool:
    # NDCG@10 -0.001 [-0.008, 0.005], Recall@10 +0.001 [-0.005, 0.007], cold-item Recall@10 +0.015
    # [-0.004, 0.037], for 58 of its 285 pairs per user (20: 111 pairs, every figure within 0.001);
    # bench/bench_nightly.py, 100k synthetic users: ranker/blend night 1.82 (20: 2.23); docs/results.md.
    night_depth: int | None = 10
    # List places kept for cold products (nobody has bought them yet): the user's best cold_slots
    # cold candidates by the ranker's score take the last places of the first cold_position ones,
    # whatever their score (the ranker alone never ranked a cold product in a top 10: too few cold
    # positives to learn from). 0 = none. 1 chosen on bench/bench_ranker.py: Online Retail (real
    # purchases) cold-item Recall@10 0 -> 0.013 (no other system finds any) for NDCG@10 -0.013 over
    # all users (still +0.024 over ALS); fashion (simulated) 0 -> 0.003 for -0.002 (docs/results.md);
    # with the word-pair cold model (fashion_cold_pairs) 0 -> 0.0055 for -0.0024, 2 places 0.0091.
    cold_slots: int = 1
    cold_position: int = 10  # the kept places end here (min top_n): 10 = the first screen / Recall@10
    trees: int = 300
    max_depth: int = 6
    learning_rate: float = 0.05
    objective: str = "rank:ndcg"
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    workers: int | None = None  # xgboost.spark num_workers; null = the session's default parallelism
    seed: int = 21
    # Features left out of the ranker (ablations: the content or cold features); names from
    # hybrid.pair_features.FEATURES, checked when the ranker is trained.
    drop_features: list[str] = field(default_factory=list)

    EXPERIMENT: ClassVar[str] = "hybridrec-ranker"
    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "label_days": Limit(0, 3650, lo_open=True),
        "popular_candidates": Limit(0, 10_000),
        "repeat_candidates": Limit(0, 10_000),
        "co_neighbours": Limit(0, 1000, why="0 = no co-interaction candidates"),
        "co_recent": Limit(1, 1000),
        "co_per_user": Limit(2, 1000, why="each user adds at most co_per_user² pairs"),
        "lexical_neighbours": Limit(0, 1000, why="0 = no lexical candidates"),
        "lexical_recent": Limit(1, 1000),
        "negatives": Limit(1, 100_000),
        "night_depth": Limit(1, 100_000, why="null = the whole pool"),
        "cold_slots": Limit(0, 1000, why="places of recommend.top_n kept for cold products"),
        "cold_position": Limit(1, 10_000),
        "trees": Limit(1, 100_000),
        "max_depth": Limit(1, 32),
        "learning_rate": Limit(0, 1, lo_open=True),
        "min_child_weight": Limit(0, 1e6),
        "subsample": Limit(0, 1, lo_open=True),
        "colsample_bytree": Limit(0, 1, lo_open=True),
        "workers": Limit(1, 100_000, why="null = the default parallelism"),
        "seed": Limit(0, INT32_MAX),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        one_of("ranker.use", self.use, RANKER_MODES)
        one_of("ranker.objective", self.objective, ("rank:ndcg", "rank:map", "rank:pairwise"))


@dataclass
class EvaluateConfig:
    """Offline evaluation (``jobs/evaluate.py``, ``hybridrec.evaluation``): a temporal split.

    The systems see the events before ``cutoff`` and are judged on what users did in the
    ``test_days`` after it; ``cutoff: null`` = ``test_days`` before the day after the last event.
    """

    cutoff: str | None = None  # YYYY-MM-DD (00:00 UTC); null = derived from the data
    test_days: float = 14.0
    # Which products of the test window are relevant: allowed = those recommend.exclude lets a list
    # hold (the usual protocol); all = every product the user acted on, repeats included (the one
    # yardstick on which exclusion rules can be compared).
    relevant: str = "allowed"
    k: int = 10  # metrics at K (Recall@K, NDCG@K, MAP@K)
    few_interactions: int = 3  # the "few interactions" segment: users with at most this many events
    bootstrap_replicates: int = 200  # Poisson bootstrap over users for the confidence intervals
    confidence: float = 0.95
    seed: int = 42
    gallery_users: int = 4  # report gallery: users with their history and recommendations
    gallery_cold_products: int = 4  # report gallery: cold products with their similar items
    screenshot: bool = True  # render the report in headless Chromium (when installed)

    LIMITS: ClassVar[Mapping[str, Limit]] = {
        "test_days": Limit(0, 36_500, lo_open=True),
        "k": Limit(1, 1000),
        "few_interactions": Limit(0, 1_000_000),
        "bootstrap_replicates": Limit(1, 100_000),
        "confidence": Limit(0.5, 1),
        "seed": Limit(0, INT32_MAX),
        "gallery_users": Limit(0, 1000),
        "gallery_cold_products": Limit(0, 1000),
    }

    def __post_init__(self) -> None:
        if self.cutoff is not None:
            try:
                date.fromisoformat(str(self.cutoff))
            except ValueError as exc:
                raise ConfigError(
                    f"evaluate.cutoff must be a date like 2025-12-18 or null, got {self.cutoff!r}"
                ) from exc
        if not self.test_days > 0:
            raise ConfigError(f"evaluate.test_days must be > 0, got {self.test_days}")
        one_of("evaluate.relevant", self.relevant, ("allowed", "all"))
        for key in ("k", "bootstrap_replicates"):
            if getattr(self, key) < 1:
                raise ConfigError(f"evaluate.{key} must be at least 1, got {getattr(self, key)}")
        for key in ("few_interactions", "gallery_users", "gallery_cold_products"):
            if getattr(self, key) < 0:
                raise ConfigError(f"evaluate.{key} must be >= 0, got {getattr(self, key)}")
        if not 0.5 <= self.confidence < 1.0:
            raise ConfigError(f"evaluate.confidence must be within [0.5, 1), got {self.confidence}")


@dataclass
class Config:
    """The whole configuration of a hybridrec run."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    tables: TablesConfig = field(default_factory=TablesConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    interactions: InteractionsConfig = field(default_factory=InteractionsConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    als: AlsConfig = field(default_factory=AlsConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    ranker: RankerConfig = field(default_factory=RankerConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    # Where this config came from (the file), for messages; not a YAML key.
    source: str = field(default="<defaults>", metadata={"internal": True})
