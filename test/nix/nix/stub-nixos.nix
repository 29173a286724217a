# The few NixOS options nixos-module/ reads or sets, declared loosely, so the module evaluates
# under plain lib.evalModules with nixpkgs' lib alone (no full nixpkgs here). Names and types
# (and `apply` where it changes the value read back) are as on NixOS 25.11 for what the module
# or the tests read; systemd.targets, systemd.user.targets and environment.etc are loose.
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  loose = mkOption {
    type = types.anything;
    default = { };
  };
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    users.users = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options = {
            uid = mkOption {
              type = types.nullOr types.int;
              default = null;
            };
            group = mkOption {
              type = types.str;
              default = "";
            };
            home = mkOption {
              type = types.passwdEntry types.path;
              default = "/var/empty";
            };
            isNormalUser = mkOption {
              type = types.bool;
              default = false;
            };
            isSystemUser = mkOption {
              type = types.bool;
              default = false;
            };
            description = mkOption {
              type = types.str;
              default = "";
            };
          };
        }
      );
    };
    users.groups = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options.gid = mkOption {
            type = types.nullOr types.int;
            default = null;
          };
        }
      );
    };
    systemd.package = mkOption {
      type = types.package;
      default = pkgs.systemd;
    };
    systemd.packages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    systemd.tmpfiles.packages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      # NixOS reads lib/tmpfiles.d from each package's lib output if it has one.
      apply = map lib.getLib;
    };
    services.udev.packages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    systemd.targets = loose;
    systemd.network.netdevs = loose;
    networking.nameservers = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    networking.bridges = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options.interfaces = mkOption { type = types.listOf types.str; };
          options.rstp = mkOption {
            type = types.bool;
            default = false;
          };
        }
      );
    };
    systemd.user.targets = loose;
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    environment.etc = loose;
    boot.kernelModules = import ./kernel-modules-option.nix lib;
    # As NixOS declares it: sysctl names to values.
    boot.kernel.sysctl = mkOption {
      type = types.attrsOf (types.nullOr (types.oneOf [ types.bool types.str types.int ]));
      default = { };
    };
    security.polkit.enable = mkOption {
      type = types.bool;
      default = false;
    };
  };
}
