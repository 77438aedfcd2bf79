"""ESPnet's Conformer without any positional encoding (as in the diarization recipe).

``ConformerEncoder`` always builds a positional-encoding layer (abs/scaled/rel/conv); there is
no "none" option.  This subclass builds it with plain self-attention (no relative-position
terms) and no input layer, then replaces the embedding (which would add the sinusoids and scale
by sqrt(d)) with the identity, so frames carry no position information except through the
convolution module.
"""

from __future__ import annotations

import torch
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder


class PowersetConformerEncoder(ConformerEncoder):
    """Macaron Conformer blocks (½FFN, MHSA, conv, ½FFN, LayerNorm) on ``[B, F, d]`` input."""

    def __init__(
        self,
        input_size: int | None = None,
        output_size: int = 256,
        attention_heads: int = 4,
        linear_units: int = 1024,
        num_blocks: int = 4,
        dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.1,
        cnn_module_kernel: int = 31,
        macaron_style: bool = True,
        use_cnn_module: bool = True,
        activation_type: str = "swish",
        final_norm: bool = True,
        layer_norm_eps: float | None = None,
    ):
        input_size = output_size if input_size is None else input_size
        if input_size != output_size:
            raise ValueError(
                f"input_size ({input_size}) must equal output_size ({output_size}): the model "
                "projects its features to the Conformer width before the encoder"
            )
        super().__init__(
            input_size=input_size,
            output_size=output_size,
            attention_heads=attention_heads,
            linear_units=linear_units,
            num_blocks=num_blocks,
            dropout_rate=dropout_rate,
            positional_dropout_rate=0.0,
            attention_dropout_rate=attention_dropout_rate,
            input_layer=None,
            normalize_before=True,
            macaron_style=macaron_style,
            rel_pos_type="latest",
            pos_enc_layer_type="abs_pos",
            selfattention_layer_type="selfattn",
            activation_type=activation_type,
            use_cnn_module=use_cnn_module,
            cnn_module_kernel=cnn_module_kernel,
            use_flash_attn=False,
        )
        self.embed = torch.nn.Identity()
        # The reference's layout (the paper configs and imported DiariZen models set both):
        # its Conformer ends with each block's own LayerNorm and its LayerNorms use PyTorch's
        # eps (ESPnet's are 1e-12). The defaults keep ESPnet's layout.
        if not final_norm:
            self.after_norm = torch.nn.Identity()
        if layer_norm_eps is not None:
            for module in self.modules():
                if isinstance(module, torch.nn.LayerNorm):
                    module.eps = float(layer_norm_eps)
