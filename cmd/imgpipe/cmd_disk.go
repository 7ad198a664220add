package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"imgpipe/internal/disk"
	"imgpipe/internal/view"
)

func init() { register(newDiskCmd) }

func newDiskCmd() *cobra.Command {
	c := &cobra.Command{Use: "disk", Short: "Inspect, convert and check disk images (VHDX, VHD, qcow2, raw)"}
	c.AddCommand(newDiskInspectCmd(), newDiskConvertCmd(), newDiskCheckCmd())
	return c
}

func newDiskInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a disk image's format, sizes, allocation, generation and Azure readiness",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := disk.Inspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return view.Inspection(stdout, jsonOutput(), r)
		},
	}
}

func newDiskConvertCmd() *cobra.Command {
	var (
		to string
		o  disk.ConvertOptions
	)
	c := &cobra.Command{
		Use:   "convert IN OUT --to vhd-fixed|vhdx|raw",
		Short: "Convert a disk image to a fixed VHD (Azure-ready), a dynamic VHDX or raw",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.To, err = disk.ParseOutputFormat(to); err != nil {
				return err
			}
			var finish func()
			o.Progress, finish = newProgressBar("converting", 0)
			res, err := disk.ConvertPath(cmd.Context(), args[0], args[1], o, func(w string) { fmt.Fprintln(os.Stderr, "imgpipe: warning:", w) })
			finish()
			if err != nil {
				return err
			}
			return view.Write(stdout, jsonOutput(), res, res.Text(args[1]))
		},
	}
	c.Flags().StringVar(&to, "to", "", "output format: vhd-fixed, vhdx or raw (required)")
	c.Flags().BoolVar(&o.Overwrite, "force", false, "replace OUT if it exists")
	c.Flags().Int64Var(&o.BlockSize, "block-size", 0, "VHDX block size in bytes (default 32 MiB)")
	return c
}

func newDiskCheckCmd() *cobra.Command {
	var azure bool
	c := &cobra.Command{
		Use:   "check --azure FILE",
		Short: "Check whether a VHD file can be uploaded to Azure as it is",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !azure {
				return errors.New("say what to check against: --azure")
			}
			r, err := disk.CheckAzureVHD(args[0])
			if err != nil {
				return err
			}
			if err := view.Readiness(stdout, jsonOutput(), args[0], r); err != nil {
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
