# Stand-ins for what full nixpkgs would give: packages are attribute sets with an outPath (the
# store paths of examples/*.json), and the guest builder returns each example VM's built paths.
let
  pkg = outPath: {
    type = "derivation";
    inherit outPath;
    name = builtins.baseNameOf outPath;
  };
  # One built guest: the rootfs derivation (nixos.erofs, bzImage, initrd) and the system.
  guest = rootfs: toplevel: {
    kernel = "${rootfs}/bzImage";
    initrd = "${rootfs}/initrd";
    rootImage = "${rootfs}/nixos.erofs";
    init = "${toplevel}/init";
    kernelParams = [ ];
    inherit rootfs toplevel;
  };
  s = "/nix/store/";
in
{
  pkgs = {
    bash = pkg "${s}0s1nfsyf0cqmm7cnqh3hasqz1ilm0rj7-bash-5.3p3";
    coreutils = pkg "${s}1f4m7i0c5h3dg2yqvbqvnxhy04d8v5bx-coreutils-9.8";
    systemd = pkg "${s}2a0bhqbwkzh1fpy5l5cjgzw2s1qvqy0k-systemd-258.2";
    socat = pkg "${s}3cz0gcrc4xks9r1jycm3ypxjqh8qz9j8-socat-1.8.0.3";
    crosvm = pkg "${s}4d6x0a0k3kr6n7w6gqmrb3mqafmmb0nn-crosvm-140.0";
    cloud-hypervisor = pkg "${s}5e1z9g4e7y5b8s0h2it1k3f5a7m9o0p2-cloud-hypervisor-53.0" // { version = "53.0"; };
    virtiofsd = pkg "${s}7m2p0x5v8n6r9h1y3zk2b4w6q8d0f1g3-virtiofsd-1.13.2";
    qemu_kvm = pkg "${s}7q3ma1k6lq7w0b4j5b5n7m5ax9w5q2yz-qemu-10.1.2";
    openssh = pkg "${s}8n3q1y6w9p7s0j2z4al3c5x7r9e1g2h4-openssh-10.2p1";
    jq = pkg "${s}ej4w2b8x6s0v9c1k3dm5f7h9j1l3n5p7-jq-1.8.1";
    iproute2 = pkg "${s}9p4r2z7x0q8t1k3a5bm4d6y8s0f2h3i5-iproute2-6.17.0";
    nftables = pkg "${s}3s9q6w1x4y7z0a2b5c8d1e4f7g0h3i6j-nftables-1.1.5";
    vhost-device-sound = pkg "${s}aq5s3a8y1r9v2l4b6cn5e7z9t1g3i4j6-vhost-device-sound-0.2.0";
    vulkan-loader = pkg "${s}cs7v5c0a3t1x4n6d8ep7g9b1w3i5k6l8-vulkan-loader-1.4.328";
    graphviz = pkg "${s}fg9b7e2c5w3z6q8f0gr9i1d3y5k7m8n0-graphviz-12.2.1";
    # Guest programs of the recipes.
    firefox = pkg "${s}ef8a6d1b4v2y5p7e9fq8h0c2x4j6l7m9-firefox-145.0";
    vmsilo-gen = pkg "${s}11111111111111111111111111111111-vmsilo-0.1.0";
    # Its `wayland` output holds vmsilo-wayland-seccontext.
    vmsilo-tools = pkg "${s}dt9x7e2c5w3z6q8f0gr9i1d3y5k7m8n0-vmsilo-tools-0.1.0" // {
      wayland = pkg "${s}br6t4b9z2s0w3m5c7do6f8a0v2h4j5k7-vmsilo-wayland-seccontext-0.1.0";
      tray = pkg "${s}8t4r2a7y1n3s5v9b0c6d2e4f1g3h5j7k-vmsilo-tools-0.1.0-tray";
    };
    # Both keep what a build would get, so tests can run it (eval.nix, `generate`).
    writeText = name: text: pkg "${s}00000000000000000000000000000000-${name}" // { inherit text; };
    runCommandLocal = name: env: script: pkg "${s}22222222222222222222222222222222-${name}" // { inherit env script; };
    # For the default guest builder (rootfs/): a fake eval-config, and erofs.nix not built.
    path = ./fake-nixpkgs;
    callPackage = file: args: pkg "${s}33333333333333333333333333333333-${args.name}.erofs";
  };
  # A guest for any name (templates.nix): its paths say which name it was built for.
  guestNamed = name: guest "${s}44444444444444444444444444444444-vmsilo-rootfs-${name}" "${s}55555555555555555555555555555555-nixos-system-${name}";

  guests = {
    minimal.work = guest "${s}5h2q8h3b9b3f0w7ryf2l0fqb6c4q5zpx-vmsilo-rootfs-work" "${s}6k7bw6fnl3g7vq5ggl5p9zr3j5dhxq1m-nixos-system-work-25.11";
    desktop = {
      net = guest "${s}2b8w6d1b4v2y5p7e9fq8h0c2x4j6l7m9-vmsilo-rootfs-net" "${s}9m7l6j4x2c0h8qf9e7p5y2v4b1d6w8b2-nixos-system-net-25.11";
      work = guest "${s}3c9x7e2c5w3z6q8f0gr9i1d3y5k7m8n0-vmsilo-rootfs-work" "${s}0n8m7k5y3d1i9rg0f8q6z3w5c2e7x9c3-nixos-system-work-25.11";
      banking = guest "${s}4d0y8f3d6x4a7r9g1hs0j2e4z6l8n9o1-vmsilo-rootfs-banking" "${s}1o9n8l6z4e2j0sh1g9r7a4x6d3f8y0d4-nixos-system-banking-25.11";
      dev = guest "${s}6f2a0h5f8z6c9t1i3ju2l4g6b8n0p1q3-vmsilo-rootfs-dev" "${s}2p0o9m7a5f3k1ti2h0s8b5y7e4g9z1e5-nixos-system-dev-25.11";
    };
  };
}
