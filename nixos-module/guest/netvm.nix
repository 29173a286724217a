# A network VM's guest (programs.vmsilo.nixosVms.<vm>.network.isNetvm): it forwards its clients'
# traffic, masquerading it out of its own upstream interfaces, and drops what clients send to each
# other or to the guest itself (replies and DNS excepted: it answers its clients' DNS, forwarding to
# its own resolver). The interfaces facing clients are the `vc-*` ones
# the host names (the generator allocates the links); the ruleset matches that prefix only, so it
# is the same for any set of clients and Nix never needs the allocation.
{ config, lib, ... }:
{
  config = lib.mkIf config.vmsilo.guest.netvm {
    boot.kernel.sysctl."net.ipv4.conf.all.forwarding" = true;
    networking.nftables.enable = true;
    networking.nftables.tables.vmsilo-netvm = {
      family = "inet";
      content = builtins.readFile ./netvm.nft;
    };
    # DNS for the clients (their nameserver is this VM's address of their link), netvm-dns.conf.
    services.dnsmasq = {
      enable = true;
      resolveLocalQueries = false;
      settings.conf-file = [ "${./netvm-dns.conf}" ];
    };
  };
}
