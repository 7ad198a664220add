package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"imgpipe/internal/disk"
)

func init() { register(newDiskCmd) }

func newDiskCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "disk",
		Short: "Inspect, convert and check disk images (VHDX, VHD, qcow2, raw)",
		Long: `Work with the disk images a build produces.

imgpipe reads VHDX (dynamic and fixed), VHD (fixed and dynamic), qcow2 (v2 and
v3, compressed or not) and raw images, detecting the format from the file's
content, and only ever reads the ranges that hold data. Other formats (VMDK,
VDI, QED, ISO, archives, text) are refused with the qemu-img command that
converts them; a raw file without a partition table gets a warning. Azure accepts only fixed VHDs whose virtual size is a whole
number of MiB: "convert --to vhd-fixed" makes one, "check --azure" tells you
whether a file already is one and what to do if not.`,
		Example: `  imgpipe disk inspect build/image.vhdx
  imgpipe disk convert build/image.vhdx out/image.vhd --to vhd-fixed
  imgpipe disk check --azure out/image.vhd`,
	}
	c.AddCommand(newDiskInspectCmd(), newDiskConvertCmd(), newDiskCheckCmd())
	return c
}

func newDiskInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a disk image's format, sizes, allocation, generation and Azure readiness",
		Long: `Inspect reads a disk image's structures (never its unallocated space) and
reports its format, virtual size, block size, logical and physical sector
sizes, how many bytes may hold data, the Hyper-V generation its partition
table implies (V1 BIOS/MBR, V2 UEFI/GPT with an EFI System Partition), and
whether the file can be uploaded to Azure as it is.

A VHDX whose log was not replayed (the disk was not closed cleanly) is read by
replaying the log in memory; the file itself is never modified.`,
		Example: `  imgpipe disk inspect build/image.vhdx
  imgpipe disk inspect --output json out/image.vhd | jq .azure.ready`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := disk.Inspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if jsonOutput() {
				return printJSON(r)
			}
			if err := printTable([]string{"PROPERTY", "VALUE"}, r.Rows()); err != nil {
				return err
			}
			return printText(r.Azure.FindingsText())
		},
	}
}

func newDiskConvertCmd() *cobra.Command {
	var (
		to        string
		force     bool
		blockSize int64
	)
	c := &cobra.Command{
		Use:   "convert IN OUT --to vhd-fixed|vhdx|raw",
		Short: "Convert a disk image to a fixed VHD (Azure-ready), a dynamic VHDX or raw",
		Long: `Convert reads any supported image (VHDX, VHD, qcow2, raw) and writes OUT in the
format given by --to:

  vhd-fixed  an Azure-ready fixed VHD: virtual size rounded up to a whole MiB,
             valid footer (checksum, CHS geometry, unique id)
  vhdx       a dynamic VHDX (Hyper-V), blocks holding only zeros not allocated
  raw        the plain disk bytes

Only ranges that hold non-zero data are read and written: the output is a
sparse file, so a 127 GiB disk with 3 GiB of data takes about 3 GiB on disk.
OUT is written under a temporary name and moved into place only when
complete and synced; an existing OUT is kept unless --force is given.`,
		Example: `  imgpipe disk convert build/image.vhdx out/image.vhd --to vhd-fixed
  imgpipe disk convert image.raw image.vhdx --to vhdx --block-size 33554432
  imgpipe disk convert old.vhd new.raw --to raw --force`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := disk.ParseOutputFormat(to)
			if err != nil {
				return err
			}
			bar, finish := newProgressBar("converting", 0)
			res, err := disk.ConvertPath(cmd.Context(), args[0], args[1], disk.ConvertOptions{
				To: format, Overwrite: force, Progress: bar, BlockSize: blockSize,
			}, func(w string) { fmt.Fprintln(os.Stderr, "imgpipe: warning:", w) })
			finish()
			if err != nil {
				return err
			}
			return draw(res, res.Text(args[1]))
		},
	}
	c.Flags().StringVar(&to, "to", "", "output format: vhd-fixed, vhdx or raw (required)")
	c.Flags().BoolVar(&force, "force", false, "replace OUT if it exists")
	c.Flags().Int64Var(&blockSize, "block-size", 0, "VHDX block size in bytes (default 32 MiB)")
	return c
}

func newDiskCheckCmd() *cobra.Command {
	var azure bool
	c := &cobra.Command{
		Use:   "check --azure FILE",
		Short: "Check whether a VHD file can be uploaded to Azure as it is",
		Long: `Check --azure verifies what Azure requires of an uploaded disk: a fixed VHD,
virtual size a whole number of MiB, file size equal to the virtual size plus
the 512-byte footer, a valid footer checksum, the CHS geometry the VHD
specification gives for the size, and Azure's size limits: a page blob holds
at most 8 TiB (footer included), an OS disk (and so a managed image or gallery
image version) at most 4,095 GiB, 2 TiB when it boots as generation 1 (MBR).
Each finding says how to fix it.

The exit status is 0 when the file is ready, 2 when it is not (1 on errors),
so scripts can gate an upload on it.`,
		Example: `  imgpipe disk check --azure out/image.vhd
  imgpipe disk check --azure --output json out/image.vhd`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !azure {
				return errors.New("say what to check against: --azure")
			}
			r, err := disk.CheckAzureVHD(args[0])
			if err != nil {
				return err
			}
			verdict := " is NOT ready for Azure\n"
			if r.Ready {
				verdict = " is ready for Azure\n"
			}
			if err := draw(r, args[0]+verdict+r.FindingsText()); err != nil {
				return err
			}
			if !r.Ready {
				return negative(fmt.Errorf("%s is not ready for Azure (%d finding(s))", args[0], len(r.Findings)))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&azure, "azure", false, "check Azure's requirements for uploaded VHDs")
	return c
}
