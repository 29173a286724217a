# One word of an Exec*= line, as nixpkgs' utils.escapeSystemdExecArg quotes it (the guest modules'
# units are written by NixOS, whose utils the guest modules do not take as an argument).
lib: a: lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON a)
