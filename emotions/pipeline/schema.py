"""The checked configuration schema: every key of every section, with its type and range, defined once.

The model kinds' options are pydantic models (`emotions/models/kind_options.py`: `BaselineOptions`, `TransformerOptions`,
`CNNOptions`, whose defaults are the kinds' `DEFAULTS`); the extension, leak and augmentation
sections are built from their modules' defaults, so each option is declared in one place.
`validate_config` runs on the merged config before any stage runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, create_model, field_validator

from ..augment import AUGMENT_DEFAULTS
from ..core.options import Options, OptionsError, check, closest, describe_errors
from ..core.paths import NOTEBOOKS_DIR
from ..data.extend import SOURCE_DEFAULTS
from ..data.label_issues import LabelIssuesOptions
from ..data.leaks import LEAK_DEFAULTS
from ..data.utterances import UTTERANCE_SHARE
from ..models.kind_options import BaselineOptions, CNNOptions, TransformerOptions, UseOptions
from ..models.thresholds import ThresholdSplit
from .ablation_configs import CONFIGS
from .self_training import SelfTrainingOptions

DEFAULT_PROFILE = "baseline"   # what run_all.py and the notebooks use when no profile is named: base.yaml as it is

KIND_OPTIONS: dict[str, type[Options]] = {"baseline": BaselineOptions, "transformer": TransformerOptions,
                                          "cnn": CNNOptions, "use": UseOptions}


def _type_of(value: Any) -> Any:
    """The field type a default implies (None and empty containers: anything of that shape)."""
    if isinstance(value, bool):
        return bool
    if isinstance(value, int):
        return int
    if isinstance(value, float):
        return float
    if isinstance(value, str):
        return str
    if isinstance(value, (list, tuple)):
        return list
    if isinstance(value, dict):
        return dict
    return Any


# the type of options whose default is None (the rest accept anything)
_NONE_DEFAULT_TYPES: dict[str, Any] = {
    "max_rows": Annotated[int, Field(ge=1)] | None, "max_count": Annotated[int, Field(ge=1)] | None,
    "select_labels": list[str] | None, "from_sources": list[str] | None,
}


def options_from_defaults(name: str, defaults: dict[str, Any]) -> type[Options]:
    """An Options model whose fields are `defaults`' keys, typed by their values (nested dicts of
    options become nested models; an optional None default accepts anything)."""
    fields: dict[str, Any] = {}
    for key, value in defaults.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value) and \
                any(isinstance(v, (bool, int, float, str, dict)) for v in value.values()):
            sub = options_from_defaults(f"{name}_{key}", value)
            fields[key] = (sub, sub())
        elif value is None:
            fields[key] = (_NONE_DEFAULT_TYPES.get(key, Any), None)
        else:
            t = _type_of(value)
            fields[key] = (t | None if t in (int, float, str) else t, value)
    return create_model(name, __base__=Options, **fields)


Fraction = Annotated[float, Field(gt=0, lt=1)]
Methods = options_from_defaults("AugmentMethods", AUGMENT_DEFAULTS["methods"])
Leak = options_from_defaults("Leak", LEAK_DEFAULTS)
Sources = create_model(
    "Sources", __base__=Options,
    user_csvs=(list[str], []),       # your CSVs in the Kaggle format (e.g. LLM-written rows)
    **{name: (model := options_from_defaults(f"Source_{name}", {**d, "enabled": False}), model())
       for name, d in SOURCE_DEFAULTS.items()})


class Common(Options):
    """Top-level options (`-p seed=7` is `common.seed`)."""

    seed: int = Field(42, ge=0)
    task: str = "cryptonite"
    profile: str = DEFAULT_PROFILE
    # the test file's row count: auto = the data root's declaration (<task>/dataset.yaml), else the
    # real file's known count (8,742 for cryptonite); an integer; or null = no check
    expected_test_rows: Literal["auto"] | Annotated[int, Field(ge=1)] | None = "auto"


class Preprocess(Options):
    demojize: bool = True
    emoji_language: str = "ru"
    asr_style: bool = True
    asr_dictionary: bool = True
    asr_dictionary_paths: list[str] = []


class Eda(Options):
    n_examples: int = Field(5, ge=0)


class Splits(Options):
    """Split fractions; which ones apply depends on the task (configs/tasks/<task>.yaml)."""

    valid_train_frac: Fraction | None = None
    valid_tune_frac: Fraction | None = None
    tune_frac: Fraction | None = None
    holdout_frac: Fraction | None = None
    # cryptonite: the written spoken-style utterances (data/utterances/) as tune_utterances (this share of the
    # training writers' rows) and holdout_utterances (the evaluation writers'), the test's second population
    utterances: bool | None = None
    utterance_tune_frac: Fraction | None = None


class Extend(Options):
    splits: Splits = Splits()
    sources: Sources = Sources()  # type: ignore[valid-type]
    leak: Leak = Leak()  # type: ignore[valid-type]


class Augment(Options):
    enabled: bool = False
    budget: Literal["auto"] | dict[str, Any] | None = {}
    methods: Methods = Methods()  # type: ignore[valid-type]


class Train(Options):
    model: Literal["baseline", "transformer", "cnn", "use"] = "baseline"
    baseline: BaselineOptions = BaselineOptions()
    transformer: TransformerOptions = TransformerOptions()
    cnn: CNNOptions = CNNOptions()
    use: UseOptions = UseOptions()
    # where the per-class thresholds are tuned: the clean tune split, or its ASR-style rendering (tune_asr,
    # emotions/augment/asr_render.py) when the target is the ASR test; never the holdout
    threshold_split: ThresholdSplit = "tune"
    # with threshold_split tune+utterances: the weight of the tune_utterances rows (the test's share of them)
    utterance_share: float = Field(UTTERANCE_SHARE, gt=0, lt=1)
    # likely label errors in the training rows (cleanlab, out-of-fold probabilities): none | report | remove |
    # downweight (baseline only); the report goes to the run folder's label_issues.csv
    label_issues: LabelIssuesOptions = LabelIssuesOptions()
    # self-training: pseudo-label the unlabelled test texts the model is confident about and retrain a fresh model
    # on train + those rows (emotions/pipeline/self_training.py); never holdout; the report: self_training.json
    self_training: SelfTrainingOptions = SelfTrainingOptions()
    # models trained with seeds seed, seed+1, ... on the same rows; probabilities averaged, thresholds tuned on
    # the average (1 = a single model)
    ensemble_size: int = Field(1, ge=1)
    # the model's training seed (initialisation, batch order); None = common.seed, which also draws the splits:
    # another model_seed trains another model on the same rows (e.g. for submission.ensemble_runs)
    model_seed: int | None = Field(None, ge=0)


class Evaluate(Options):
    """The evaluate stage: besides tune and holdout, their ASR-style renderings (tune_asr, holdout_asr)."""

    asr: bool = True     # also score ASR-style renderings of tune and holdout (render_asr, fixed seed)
    n_errors: int = Field(5, ge=0)   # the error analysis: most confident false positives / negatives per class


class Export(Options):
    enabled: bool = False
    force: bool = False
    n_parity: int = Field(1000, ge=1)


class Ablation(Options):
    enabled: bool = False
    configs: list[str] = []
    model: Literal["baseline", "transformer", "cnn", "use"] = "baseline"
    model_params: dict[str, Any] = {}

    @field_validator("configs")
    @classmethod
    def _known_configs(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in CONFIGS:
                near = closest(name, CONFIGS)
                raise ValueError(f"unknown ablation config {name!r}" + (f"; did you mean {near}?" if near else
                                 f"; known: {list(CONFIGS)}"))
        return names


class Submission(Options):
    """The submission stage: this run's model, or its average with other runs' (same data and seed)."""

    ensemble_runs: list[str] = []   # run ids under the runs folder, or paths


class Tracking(Options):
    """MLflow tracking of each run_all.py run (emotions/tracking.py): `$MLFLOW_TRACKING_URI`, else the project's
    sqlite:///mlruns.db."""

    enabled: bool = True
    model_name: str | None = None   # also register the run's model folder as a version of this model name


class Config(Options):
    """The whole merged configuration (configs/base.yaml <- profile <- task <- -p)."""

    common: Common = Common()
    stages: list[str] = []
    preprocess: Preprocess = Preprocess()
    eda: Eda = Eda()
    extend: Extend = Extend()
    augment: Augment = Augment()
    train: Train = Train()
    evaluate: Evaluate = Evaluate()
    submission: Submission = Submission()
    export: Export = Export()
    ablation: Ablation = Ablation()
    tracking: Tracking = Tracking()

    @field_validator("stages")
    @classmethod
    def _known_stages(cls, stages: list[str]) -> list[str]:
        known = sorted(p.stem for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
        for s in stages:
            if s not in known:
                near = closest(s, known)
                raise ValueError(f"unknown stage {s!r}" + (f"; did you mean {near}?" if near else f"; known: {known}"))
        return stages


def validate_config(cfg: dict, overrides: dict[str, str] | None = None) -> dict:
    """Check the merged config against `Config`; return it with values converted to their types
    (e.g. lr '1e-4' -> 1e-4). Raises OptionsError naming each bad key, the expected type and the
    closest known keys; `overrides` ({dotted key: '-p' text}) marks the problems a -p caused."""
    try:
        model = Config.model_validate(cfg)
        check(KIND_OPTIONS[model.ablation.model], model.ablation.model_params, prefix="ablation.model_params")
    except ValidationError as e:
        raise OptionsError(_mark(describe_errors(e, Config), overrides or {}), "config") from None
    except OptionsError as e:
        raise OptionsError(_mark(e.problems, overrides or {}), "config") from None
    return model.model_dump(mode="python", exclude_unset=True)


# keys that moved, so an old config or command gets pointed to the new place
MOVED = {"extend.expected_test_rows": "common.expected_test_rows",
         "submission.expected_test_rows": "common.expected_test_rows"}


def _mark(problems: list[str], overrides: dict[str, str]) -> list[str]:
    out = []
    for line in problems:
        src = [item for key, item in overrides.items() if f"'{key}'" in line or line.startswith(f"{key} =")]
        moved = [new for old, new in MOVED.items() if f"'{old}'" in line]
        out.append(line + (f" (it is now {moved[0]})" if moved else "") + (f"  [from -p {src[0]}]" if src else ""))
    return out


def schema_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema (for docs and tests)."""
    keys = []
    for name, f in model.model_fields.items():
        sub = f.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            keys += schema_keys(sub, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys
