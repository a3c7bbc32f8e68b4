"""The generate request, and the fields walks share with it (psi, noise mode)."""

from pydantic import Field

from gan_core import rules
from gan_core.latent import parse_seeds
from server.models.schemas import ModelRef
from server.validation import Schema, prefixed, ruled

Psi = ruled(float, lambda value, name: rules.check_psi(value, name), {
    "type": "number", "minimum": rules.PSI_MIN, "maximum": rules.PSI_MAX,
    "description": "truncation: 1 = none, 0.7 = typical, 0 = the average image"})
NoiseMode = ruled(str, lambda value, name: rules.check_noise_mode(value, name),
                  {"type": "string", "enum": list(rules.NOISE_MODES)})
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
