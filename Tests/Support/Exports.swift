// Tests see the tools (the float64 reference, the pass rule, verification) through this module.
@_exported import FlashAttentionTools
