"""Stand-in for yacs.config.CfgNode (yacs 0.1.8 is not packaged for Debian). Only what SimMIM's
config.py and the golden_train generator use: attribute access, freeze/defrost, clone, dump,
merge_from_list. dump() gives the same YAML as yacs (a safe_dump of the nested dict)."""
import ast
import copy

import yaml


class CfgNode(dict):
    def __init__(self, init_dict=None):
        super().__init__()
        object.__setattr__(self, "_frozen", False)
        for k, v in (init_dict or {}).items():
            self[k] = CfgNode(v) if isinstance(v, dict) else v

    def __getattr__(self, name):
        if name in self:
            return self[name]
        raise AttributeError(name)

    def __setattr__(self, name, value):
        if self._frozen:
            raise AttributeError(f"attempted to set {name} to {value}, but CfgNode is frozen")
        self[name] = value

    def _set_frozen(self, frozen):
        object.__setattr__(self, "_frozen", frozen)
        for v in self.values():
            if isinstance(v, CfgNode):
                v._set_frozen(frozen)

    def freeze(self):
        self._set_frozen(True)

    def defrost(self):
        self._set_frozen(False)

    def is_frozen(self):
        return self._frozen

    def clone(self):
        return copy.deepcopy(self)

    def __deepcopy__(self, memo):
        out = CfgNode()
        for k, v in self.items():
            dict.__setitem__(out, k, copy.deepcopy(v, memo))
        object.__setattr__(out, "_frozen", self._frozen)
        return out

    def to_dict(self):
        return {k: (v.to_dict() if isinstance(v, CfgNode) else v) for k, v in self.items()}

    def dump(self, **kwargs):
        return yaml.safe_dump(self.to_dict(), **kwargs)

    def merge_from_list(self, opts):
        """KEY VALUE pairs; VALUE is read as a Python literal when it is one (as yacs does)."""
        assert len(opts) % 2 == 0
        for key, raw in zip(opts[0::2], opts[1::2]):
            node = self
            parts = key.split(".")
            for p in parts[:-1]:
                node = node[p]
            try:
                value = ast.literal_eval(raw) if isinstance(raw, str) else raw
            except (ValueError, SyntaxError):
                value = raw
            old = node[parts[-1]]
            if isinstance(old, tuple) and isinstance(value, list):
                value = tuple(value)
            setattr(node, parts[-1], value)
