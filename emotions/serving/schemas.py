"""The service's request and response bodies (pydantic), made for its limits (`max_chars`, `max_batch`)."""

# no `from __future__ import annotations`: pydantic and FastAPI resolve these annotations at run time

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from .inputs import is_blank

EXAMPLE = "я так рада, что ты пришёл!"
BLANK_TEXT = "text must contain at least one visible character (empty or whitespace-only given)"


@dataclass(frozen=True)
class Bodies:
    """The body models of one app."""
    TextIn: type[BaseModel]
    BatchIn: type[BaseModel]
    Prediction: type[BaseModel]
    BatchOut: type[BaseModel]
    Health: type[BaseModel]


def request_bodies(max_chars: int, max_batch: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """TextIn (one text; a blank one is a 422) and BatchIn (1..max_batch items; a blank or null item gets
    its own error in the answer, the others are classified)."""

    class TextIn(BaseModel):
        """One text to classify."""
        text: StrictStr = Field(..., description=f"raw text; longer than {max_chars} characters is truncated",
                                examples=[EXAMPLE])

        @field_validator("text")
        @classmethod
        def _check(cls, v: str) -> str:
            if is_blank(v):
                raise ValueError(BLANK_TEXT)
            return v

    class BatchIn(BaseModel):
        """Several texts to classify at once."""
        texts: list[StrictStr | None] = Field(
            ..., min_length=1, max_length=max_batch, examples=[[EXAMPLE, "ужас какой"]],
            description=f"1..{max_batch} raw texts; an empty, whitespace-only or null item gets an `error` "
                        f"in its result instead of labels")

    return TextIn, BatchIn


def response_bodies(max_chars: int) -> tuple[type[BaseModel], type[BaseModel], type[BaseModel]]:
    """Prediction, BatchOut and Health."""

    class Prediction(BaseModel):
        labels: list[str] = Field(..., description="decided labels (tuned thresholds; argmax for single-label)")
        scores: dict[str, float] = Field(..., description="probability per label (empty for an item in error)")
        truncated: bool = Field(..., description=f"the text was cut to {max_chars} characters")
        warning: str | None = Field(None, description="set when the prediction deserves caution, e.g. a text "
                                                      "that is empty after preprocessing (only present then)")
        error: str | None = Field(None, description="/predict/batch: why this item got no labels (missing or "
                                                    "empty text; only present then)")

    class BatchOut(BaseModel):
        results: list[Prediction] = Field(..., description="one per input text, in order")

    class Health(BaseModel):
        model_config = ConfigDict(protected_namespaces=())
        status: str
        kind: str
        task: str
        backend: str
        version: str
        labels: list[str]
        multilabel: bool
        max_chars: int
        max_batch: int

    return Prediction, BatchOut, Health


def make_bodies(max_chars: int, max_batch: int) -> Bodies:
    """All body models of an app with these limits."""
    return Bodies(*request_bodies(max_chars, max_batch), *response_bodies(max_chars))
