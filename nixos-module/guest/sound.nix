# Sound defaults of ORIGINAL.md §B24, when the VM has playback or capture (virtio-snd backed by
# vhost-device-sound on the host). Everything is a default the guestConfig may override.
{
  config,
  lib,
  ...
}:
let
  s = config.vmsilo.guest.sound;
in
{
  config = lib.mkIf (s.playback || s.capture) {
    boot.kernelModules = [ "virtio_snd" ];
    services.pipewire = {
      enable = lib.mkDefault true;
      pulse.enable = lib.mkDefault true;
      alsa.enable = lib.mkDefault true;
      extraConfig.pipewire."50-allow-sample-rates"."context.properties"."default.clock.allowed-rates" = [
        44100
        48000
        88200
        96000
        176400
        192000
        352800
        384000
      ];
      wireplumber.extraConfig = {
        "50-default-volume"."wireplumber.settings"."device.routes.default-sink-volume" = 1.0;
        "51-virtio-snd-headroom"."monitor.alsa.rules" = [
          {
            matches = [ { "node.name" = "~alsa_output.*"; } ];
            actions.update-props."api.alsa.headroom" = 1024;
          }
        ];
      };
    };
    security.rtkit.enable = true;
    security.pam.loginLimits = [
      {
        domain = "@audio";
        item = "rtprio";
        type = "-";
        value = "95";
      }
      {
        domain = "@audio";
        item = "nice";
        type = "-";
        value = "-19";
      }
      {
        domain = "@audio";
        item = "memlock";
        type = "-";
        value = "unlimited";
      }
    ];
  };
}
