package build

import (
	"os"
	"path/filepath"
	"strings"

	"imgpipe/internal/disk"
)

// InspectDisk is the default Options.Inspect: it recognises VHDX and VHD by
// their signatures (internal/disk), qcow2 by its magic, and raw disks by
// their extension (.raw, .img), since any file reads as "raw". For VHDX,
// VHD and raw it reads the partition table to tell the Hyper-V generation.
func InspectDisk(path string) (DiskInfo, bool) {
	f, err := disk.DetectFormat(path)
	if err != nil {
		return DiskInfo{}, false
	}
	if f == disk.FormatRaw {
		if isQcow2(path) {
			return DiskInfo{Format: "qcow2"}, true
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".raw", ".img":
		default:
			return DiskInfo{}, false
		}
	}
	img, err := disk.Open(path)
	if err != nil {
		return DiskInfo{Format: string(f)}, true
	}
	defer img.Close()
	info := DiskInfo{Format: string(img.Format()), VirtualSize: img.Size()}
	if g, err := disk.DetectGeneration(img); err == nil {
		info.Generation = string(g)
	}
	return info, true
}

func isQcow2(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 4)
	_, err = f.ReadAt(b, 0)
	return err == nil && string(b) == "QFI\xfb"
}
