"""The generate request, and the fields walks share with it (psi, noise mode, seamless,
size multiplier)."""

from pydantic import Field, model_validator

from gan_core import rules
from gan_core.latent import parse_seeds
from server.models.schemas import ModelRef
from server.validation import Schema, prefixed, ruled

Psi = ruled(float, lambda value, name: rules.check_psi(value, name), {
    "type": "number", "minimum": rules.PSI_MIN, "maximum": rules.PSI_MAX,
    "description": "truncation: 1 = none, 0.7 = typical, 0 = the average image"})
NoiseMode = ruled(str, lambda value, name: rules.check_noise_mode(value, name),
                  {"type": "string", "enum": list(rules.NOISE_MODES)})
SizeMultiplier = ruled(int, lambda value, name: rules.check_size_multiplier(value, name), {
    "type": "integer", "minimum": 1, "maximum": rules.MAX_SIZE_MULTIPLIER,
    "description": "images this many times the model's resolution (seamless textures: 2 or more needs seamless "
                   "mode, which it turns on when seamless is null)"})
SEAMLESS_DESCRIPTION = ("tileable images: every padding in the network wraps around; null: the model's own "
                        "setting (on for models trained tileable)")


def check_texture_fields(seamless, size_multiplier) -> None:
    """A size multiplier above 1 needs seamless mode: explicitly off is refused (422)."""
    if size_multiplier > 1 and seamless is False:
        raise ValueError(f"size_multiplier {size_multiplier} needs seamless mode: set seamless to true or null, "
                         "or size_multiplier to 1")


Seeds = prefixed(list[int], lambda value: parse_seeds(value, max_count=rules.SEEDS_PER_REQUEST), {
    "description": f"at most {rules.SEEDS_PER_REQUEST} seeds, each from 0 to {rules.MAX_SEED}",
    "oneOf": [
        {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": rules.MAX_SEED},
         "minItems": 1, "maxItems": rules.SEEDS_PER_REQUEST},
        {"type": "string", "examples": ["0-3,7"]},
        {"type": "integer", "minimum": 0, "maximum": rules.MAX_SEED},
    ]})


class GenerateRequest(Schema):
    """POST /generate: one seed answers image/png, several a zip of seedNNNN.png."""

    model: ModelRef = Field(description="the network to generate with")
    seeds: Seeds = Field(description="a list of seeds, one seed, or text like '0-3,7'")
    psi: Psi = 1.0
    noise_mode: NoiseMode = "const"
    seamless: bool | None = Field(None, description=SEAMLESS_DESCRIPTION)
    size_multiplier: SizeMultiplier = 1

    @model_validator(mode="after")
    def _texture(self):
        check_texture_fields(self.seamless, self.size_multiplier)
        rules.check_enlarged_count(len(self.seeds), rules.SEEDS_PER_REQUEST, self.size_multiplier, "seeds per request")
        return self
