package drift

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	_ "modernc.org/sqlite" // rpm's SQLite package database, read in-process
)

// collectRPM reads rpm's SQLite package database in the tree
// (var/lib/rpm/rpmdb.sqlite or usr/lib/sysimage/rpm/rpmdb.sqlite). The older
// Berkeley DB and ndb formats are recognised and reported as not implemented.
func collectRPM(root string) ([]Package, CollectorStatus) {
	const name = "rpm"
	if runtime.GOOS == "windows" {
		return nil, notOnThisPlatform(name)
	}
	var legacy string
	for _, dir := range []string{"usr/lib/sysimage/rpm", "var/lib/rpm"} {
		d, err := resolveInRoot(root, dir)
		if err != nil {
			return nil, CollectorStatus{Name: name, Status: CollectorError, Detail: err.Error()}
		}
		p := filepath.Join(d, "rpmdb.sqlite")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			pkgs, err := readRPMSQLite(p)
			if err != nil {
				return nil, CollectorStatus{Name: name, Status: CollectorError, Detail: err.Error()}
			}
			return pkgs, CollectorStatus{Name: name, Status: CollectorOK, Detail: fmt.Sprintf("%d packages", len(pkgs))}
		}
		for _, f := range []string{"Packages", "Packages.db"} {
			if _, err := os.Stat(filepath.Join(d, f)); err == nil {
				legacy = dir + "/" + f
			}
		}
	}
	if legacy != "" {
		return nil, CollectorStatus{Name: name, Status: CollectorNotImplemented,
			Detail: legacy + " is a Berkeley DB or ndb rpm database; only rpmdb.sqlite is read (rpm collector not implemented for this format)"}
	}
	return nil, CollectorStatus{Name: name, Status: CollectorAbsent, Detail: "no rpm database"}
}

func readRPMSQLite(path string) ([]Package, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// immutable=1: never create -wal/-shm files or take locks inside the image.
	u := url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&immutable=1"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT blob FROM Packages")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer rows.Close()
	var pkgs []Package
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		p, err := ParseRPMHeader(blob)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pkgs = append(pkgs, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	sortPackages(pkgs)
	return pkgs, nil
}

// rpm header tags and types used here.
const (
	rpmTagName    = 1000
	rpmTagVersion = 1001
	rpmTagRelease = 1002
	rpmTagEpoch   = 1003
	rpmTagArch    = 1022

	rpmTypeInt32      = 4
	rpmTypeString     = 6
	rpmTypeI18NString = 9
)

var errRPMHeader = errors.New("malformed rpm header")

// ParseRPMHeader extracts name, [epoch:]version-release and arch from an rpm
// header blob as rpm stores it in its database (index count, data length,
// 16-byte index entries, data store; no lead magic).
func ParseRPMHeader(blob []byte) (Package, error) {
	p := Package{Manager: "rpm"}
	if len(blob) < 8 {
		return p, errRPMHeader
	}
	il := binary.BigEndian.Uint32(blob[0:4])
	dl := binary.BigEndian.Uint32(blob[4:8])
	if il == 0 || il > 0xffff || dl > 0x0fffffff {
		return p, fmt.Errorf("%w: %d index entries, %d data bytes", errRPMHeader, il, dl)
	}
	need := 8 + uint64(il)*16 + uint64(dl)
	if uint64(len(blob)) < need {
		return p, fmt.Errorf("%w: truncated", errRPMHeader)
	}
	index := blob[8 : 8+il*16]
	data := blob[8+il*16 : need]
	str := func(off uint32) (string, error) {
		if off >= uint32(len(data)) {
			return "", errRPMHeader
		}
		end := off
		for end < uint32(len(data)) && data[end] != 0 {
			end++
		}
		if end == uint32(len(data)) {
			return "", fmt.Errorf("%w: unterminated string", errRPMHeader)
		}
		return string(data[off:end]), nil
	}
	var version, release string
	epoch := int64(-1)
	for i := uint32(0); i < il; i++ {
		e := index[i*16 : i*16+16]
		tag := binary.BigEndian.Uint32(e[0:4])
		typ := binary.BigEndian.Uint32(e[4:8])
		off := binary.BigEndian.Uint32(e[8:12])
		count := binary.BigEndian.Uint32(e[12:16])
		var dst *string
		switch tag {
		case rpmTagName:
			dst = &p.Name
		case rpmTagVersion:
			dst = &version
		case rpmTagRelease:
			dst = &release
		case rpmTagArch:
			dst = &p.Arch
		case rpmTagEpoch:
			if typ != rpmTypeInt32 || count < 1 || uint64(off)+4 > uint64(len(data)) {
				return p, fmt.Errorf("%w: bad epoch", errRPMHeader)
			}
			epoch = int64(binary.BigEndian.Uint32(data[off:]))
			continue
		default:
			continue
		}
		if typ != rpmTypeString && typ != rpmTypeI18NString {
			return p, fmt.Errorf("%w: tag %d has type %d, want a string", errRPMHeader, tag, typ)
		}
		s, err := str(off)
		if err != nil {
			return p, err
		}
		*dst = s
	}
	if p.Name == "" {
		return p, fmt.Errorf("%w: no package name", errRPMHeader)
	}
	p.Version = version
	if release != "" {
		p.Version += "-" + release
	}
	if epoch >= 0 {
		p.Version = fmt.Sprint(epoch) + ":" + p.Version
	}
	return p, nil
}
