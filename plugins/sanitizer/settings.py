from pydantic import BaseModel, Field, SecretStr


class SanitizerSettings(BaseModel):
    enabled: bool = Field(
        default=True, description="mask requests of tenants that never toggled masking themselves"
    )
    pii: bool = Field(default=False, description="also mask e-mail addresses and phone numbers")
    disabled_detectors: list[str] = Field(
        default_factory=list, description="detector kinds not to run, e.g. ['generic_secret']"
    )
    vault_key: SecretStr | None = Field(
        default=None,
        description=(
            "base64 of 32 random bytes: the master key of the vault (every instance of a deployment needs "
            "the same); default: a key generated once into sanitizer.key in the data directory"
        ),
    )
    flush_interval_seconds: float = Field(
        default=0.5, gt=0, description="how often mask sightings are written (off the request path)"
    )
