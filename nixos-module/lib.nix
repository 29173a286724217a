# Name and value grammars of vmsilo.json (SPEC D1) as NixOS option types. They mirror
# src/config/grammar.ts expression by expression, written as POSIX extended regular expressions
# (what `builtins.match` takes; it anchors at both ends). test/nix/grammar-parity.test.ts runs
# both sets over the same strings, so the two cannot drift.
{ lib }:
let
  inherit (lib) types;

  # Control characters U+0001–U+001F and U+007F (a Nix string cannot hold U+0000), built with
  # fromJSON because Nix string literals have no \x escapes.
  ctl = builtins.fromJSON ''"\u0001-\u001f\u007f"'';
  ctlSpace = builtins.fromJSON ''"\u0001-\u0020\u007f"'';

  octet = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
  ipv4 = "${octet}(\\.${octet}){3}";
  prefix4 = "(3[0-2]|[12]?[0-9])";
  prefix6 = "(12[0-8]|1[01][0-9]|[1-9]?[0-9])";
  h = "[0-9a-fA-F]{1,4}";
  ipv6 = "(${
    lib.concatStringsSep "|" [
      "(${h}:){7}${h}"
      "(${h}:){1,7}:"
      "(${h}:){1,6}:${h}"
      "(${h}:){1,5}(:${h}){1,2}"
      "(${h}:){1,4}(:${h}){1,3}"
      "(${h}:){1,3}(:${h}){1,4}"
      "(${h}:){1,2}(:${h}){1,5}"
      "${h}:(:${h}){1,6}"
      ":((:${h}){1,7}|:)"
      "(${h}:){6}${ipv4}"
      "(${h}:){1,4}:${ipv4}"
      "::([fF]{4}(:0{1,4})?:)?${ipv4}"
    ]
  })";
  # A normalised absolute path (grammar.ts ABS_PATH): components that are not "." or "..", with
  # no space at either edge; no "//", no trailing "/" but "/" itself.
  pathAny = "[^/${ctl}]";
  pathEdge = "[^/ ${ctl}]";
  pathEdgeNoDot = "[^/. ${ctl}]";
  component = "(${pathEdgeNoDot}|\\.${pathEdgeNoDot}|${pathEdgeNoDot}${pathEdge}|${pathEdge}${pathAny}+${pathEdge})";
  absPath = "/|(/${component})+";
  pciBdf = "([0-9a-f]{4}:)?[0-9a-f]{2}:[0-1][0-9a-f]\\.[0-7]";

  # Every grammar: the regular expression and the words the generator uses for it (the *_TEXT
  # constants of grammar.ts), so Nix type errors and generator errors read alike.
  grammars = {
    vmName = {
      re = "[a-z]([a-z0-9-]{0,30}[a-z0-9])?";
      text = "a VM name: a lower-case letter, then lower-case letters, digits or '-', not ending in '-', at most 32 characters";
    };
    shareTag = {
      re = "[A-Za-z0-9][A-Za-z0-9_-]{0,35}";
      text = "a share tag: a letter or digit, then letters, digits, '_' or '-', at most 36 characters";
    };
    ifName = {
      re = "[A-Za-z][A-Za-z0-9_-]{0,14}";
      text = "an interface name: a letter, then letters, digits, '_' or '-', at most 15 characters";
    };
    absPath = {
      re = absPath;
      text = ''a normalised absolute path (no "." or ".." components, no "//", no trailing "/", no space at a name's start or end, no control characters)'';
    };
    mountPoint = {
      re = "/[A-Za-z0-9._+@/-]*";
      text = "an absolute path of letters, digits and . _ + @ - / (no spaces, ':' or '\\')";
    };
    size = {
      re = "[1-9][0-9]{0,12}[KMGT]?";
      text = ''a size like "10G" (digits, then an optional K, M, G or T)'';
    };
    duration = {
      re = "[1-9][0-9]{0,7}(ms|s)";
      text = ''a duration like "2s" or "250ms" (digits, then ms or s; at most a day)'';
    };
    mac = {
      re = "[0-9a-f]{2}(:[0-9a-f]{2}){5}";
      text = ''a lower-case MAC address like "02:00:00:00:00:01"'';
    };
    ipv4 = {
      re = ipv4;
      text = "an IPv4 address";
    };
    ipv4OrEmpty = {
      re = "(${ipv4})?";
      text = ''an IPv4 address or ""'';
    };
    qemuCpu = {
      re = "[A-Za-z0-9][A-Za-z0-9_.,=+-]*";
      text = ''a qemu CPU model like "host", "max" or "Skylake-Client,-hle"'';
    };
    cidr4 = {
      re = "${ipv4}/${prefix4}";
      text = ''an IPv4 address with prefix length, like "10.0.0.2/24"'';
    };
    ipv6 = {
      re = ipv6;
      text = "an IPv6 address";
    };
    cidr6 = {
      re = "${ipv6}/${prefix6}";
      text = ''an IPv6 address with prefix length, like "fd00::2/64"'';
    };
    ip = {
      re = "${ipv4}|${ipv6}";
      text = "an IPv4 or IPv6 address";
    };
    route4Dest = {
      re = "${ipv4}/${prefix4}|${ipv4}";
      text = ''an IPv4 destination like "0.0.0.0/0"'';
    };
    route6Dest = {
      re = "${ipv6}(/${prefix6})?";
      text = ''an IPv6 destination like "::/0"'';
    };
    kernelParam = {
      re = ''[^${ctlSpace}"-][^${ctlSpace}"]*'';
      text = "one kernel parameter: no spaces, '\"' or control characters, not starting with '-'";
    };
    logLevel = {
      re = "[A-Za-z0-9_:=,.-]+";
      text = ''a log level or filter like "info" or "info,devices=debug"'';
    };
    version = {
      re = "[0-9]{1,6}(\\.[0-9]{1,6}){0,3}([-+~][0-9A-Za-z.+~-]{1,64})?";
      text = ''a version like "53.0" (digits and dots, then an optional -suffix)'';
    };
    pciBdf = {
      re = pciBdf;
      text = ''a PCI address like "0000:01:00.0" or "01:00.0"'';
    };
    pciDevice = {
      re = "${pciBdf}|${absPath}";
      text = ''a PCI address like "0000:01:00.0" or "01:00.0", or an absolute sysfs path'';
    };
    usbId = {
      re = "[0-9A-Fa-f]{4}";
      text = ''four hexadecimal digits like "046d" (any case)'';
    };
    usbSerial = {
      re = "[A-Za-z0-9!#&'()+,./:;<=>@^_`{}~-]{1,126}";
      text = "a USB serial: 1–126 printable ASCII characters other than space, '\"', '\\', '*', '?', '[', ']', '|', '%' and '$'";
    };
    idMap = {
      re = "[A-Za-z0-9:_-]+";
      text = ''a virtiofsd id mapping like ":0:1000:1:" or "guest:1000:1001"'';
    };
    color = {
      re = "#[0-9a-fA-F]{6}|[a-z]{3,24}";
      text = "a CSS colour name or #RRGGBB";
    };
    userName = {
      re = "[a-z_][a-z0-9_-]{0,31}";
      text = "a POSIX user or group name";
    };
    kvKey = {
      re = "[a-z][a-z0-9-]*";
      text = ''a crosvm option key like "packed-queue"'';
    };
    diskId = {
      re = "[A-Za-z0-9_-]{1,20}";
      text = "a disk id: 1–20 letters, digits, '_' or '-'";
    };
  };

  matches = g: s: builtins.isString s && builtins.match grammars.${g}.re s != null;

  # Names that would collide with fixed unit names or with the shared helpers in libexec/vmsilo/
  # (grammar.ts RESERVED_VM_NAMES).
  reservedVmNames = [
    "session"
    "usb"
    "usb-attach"
    "usb-detach"
    "balloond"
    "gen"
    "host"
    "target"
    "wait-for-socket"
    "qmp"
    "check-disks"
    "create-disk"
    "vfio-bind"
  ];

  # A string option type for one grammar; its description is the generator's wording.
  grammarType =
    g:
    types.strMatching grammars.${g}.re
    // {
      name = "vmsilo-${g}";
      description = grammars.${g}.text;
      descriptionClass = "noun";
    };

  vmName =
    types.addCheck (grammarType "vmName") (n: !(builtins.elem n reservedVmNames))
    // {
      name = "vmsilo-vmName";
      description = "${grammars.vmName.text}, and not one of ${lib.concatStringsSep ", " reservedVmNames}";
      descriptionClass = "noun";
    };

  # The value of a crosvm key=value option (schema.ts kvValue).
  kvValue =
    types.oneOf [
      types.bool
      types.ints.unsigned
      (types.addCheck types.str (s: s != ""))
    ]
    // {
      description = "non-empty string, non-negative integer or boolean";
      descriptionClass = "noun";
    };

  kvOptions =
    types.addCheck (types.attrsOf kvValue) (
      attrs: lib.all (matches "kvKey") (builtins.attrNames attrs)
    )
    // {
      description = "attribute set of (${kvValue.description}) whose names are each ${grammars.kvKey.text}";
      descriptionClass = "noun";
    };

  # Paths within Linux's limits, in bytes (grammar.ts PATH_MAX_BYTES, NAME_MAX_BYTES): 4095 in all,
  # 255 per name.
  absPathType =
    types.addCheck (grammarType "absPath") (
      s: builtins.stringLength s <= 4095 && lib.all (n: builtins.stringLength n <= 255) (lib.splitString "/" s)
    )
    // {
      name = "vmsilo-absPath";
      description = "${grammars.absPath.text}, at most 4095 bytes and 255 bytes per name";
      descriptionClass = "noun";
    };

  # Option path of an attribute name as the generator prints it: bare when it reads as a Nix
  # identifier, else quoted (`routes."0.0.0.0/0"`).
  pathKey = k: if builtins.match "[A-Za-z_][A-Za-z0-9_-]*" k != null then k else builtins.toJSON k;
in
{
  inherit
    grammars
    matches
    reservedVmNames
    grammarType
    vmName
    kvValue
    kvOptions
    pathKey
    ;
  types = {
    inherit vmName kvValue kvOptions;
    absPath = absPathType;
    shareTag = grammarType "shareTag";
    ifName = grammarType "ifName";
    mountPoint = grammarType "mountPoint";
    size = grammarType "size";
    duration = grammarType "duration";
    mac = grammarType "mac";
    cidr4 = grammarType "cidr4";
    cidr6 = grammarType "cidr6";
    ip = grammarType "ip";
    kernelParam = grammarType "kernelParam";
    logLevel = grammarType "logLevel";
    version = grammarType "version";
    pciDevice = grammarType "pciDevice";
    pciBdf = grammarType "pciBdf";
    idMap = grammarType "idMap";
    usbId = grammarType "usbId";
    usbSerial = grammarType "usbSerial";
    color = grammarType "color";
    userName = grammarType "userName";
    diskId = grammarType "diskId";
    # crosvm's DeviceType names (model.ts VHOST_USER_TYPES; a test keeps the two equal).
    vhostUserType = lib.types.enum [
      "net"
      "block"
      "console"
      "rng"
      "balloon"
      "scsi"
      "9p"
      "gpu"
      "input"
      "vsock"
      "iommu"
      "sound"
      "fs"
      "pmem"
      "mac80211-hwsim"
      "video-encoder"
      "video-decoder"
      "scmi"
      "wl"
      "tpm"
      "pvclock"
      "media"
    ];
  };

  # The system user qemu runs as for VM `name` (src/model/derive.ts vmmUserName; a test checks
  # that both give the same names): `vmsilo-<name>` when it fits in 31 bytes, else the name's first
  # 15 characters and 8 hex digits of its sha256.
  vmmUser =
    name:
    let
      readable = "vmsilo-${name}";
    in
    if builtins.stringLength readable <= 31 then
      readable
    else
      "vmsilo-${builtins.substring 0 15 name}-${builtins.substring 0 8 (builtins.hashString "sha256" name)}";

  # The VMs a VM stands for: a disposable VM's slots `<name>-d1` … (src/model/disposable.ts
  # slotName), or the VM itself.
  runningNames = name: vm: if vm.disposable.enable then map (i: "${name}-d${toString i}") (lib.range 1 vm.disposable.slots) else [ name ];

  # A VM without its own kernel, initrd and root runs a guest vmsilo builds (its own or its template's).
  needsGuest = vm: vm.kernel == null || vm.initramfs == null || vm.rootDisk == null;
}
